"""The first release of tests/deployapp's code, as a process still running it
during a rolling deploy has it: its own models, settings and container
definitions; the migrations are the app's (the first release knew 0001 only)."""
