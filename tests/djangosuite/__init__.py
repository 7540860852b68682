"""Django's own ORM test suite with cachelayer installed and every model mapped (scripts/django_suite.sh)."""
