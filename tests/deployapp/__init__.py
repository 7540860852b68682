"""The code of a project's second release, for the rolling-deploy test
(tests/layer/test_rolling_deploy.py); tests/deployapp_v1 is its first release.

Between the two: ``price`` is rounded from 3 to 2 places, a column ``shelf``
is added with a database default (rows the old code inserts get it too), and
an index container by shelf joins the one by category. The second release
also rotates the payload key and moves to the JSON serializer."""
