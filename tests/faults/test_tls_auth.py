"""TLS and authentication reach cachelayer's own connections: memcached over
TLS (``-Z``) with pymemcache's ``tls_context``, Redis with ACL users and
passwords (in the URL or OPTIONS) and over TLS (``rediss://``), each against
a server of the test's own. A hit with 0 queries proves the cache answered."""

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import types

import pytest
from django.core.exceptions import ImproperlyConfigured

from cachelayer.adapters.registry import get_adapter
from cachelayer.checks import check_settings
from tests.faults.conftest import ALIAS
from tests.faults.servers import ServerProcess, free_port
from tests.faults.test_processes import spawn
from tests.testapp.models import Item

# slow: cache servers of the test's own; one_database: the cache connections, not the database, are under test
pytestmark = [pytest.mark.slow, pytest.mark.one_database]


@pytest.fixture
def certificate():
    """A self-signed certificate for 127.0.0.1, readable by the memcache user memcached runs as."""
    folder = tempfile.mkdtemp(prefix="cachelayer-tls-")
    os.chmod(folder, 0o755)
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    for path in (cert, key):
        os.chmod(path, 0o644)
    yield types.SimpleNamespace(cert=cert, key=key)
    shutil.rmtree(folder)


def read_twice(django_assert_num_queries) -> None:
    item = Item.objects.create(value=7)
    assert Item.cached.get(item.pk).value == 7
    with django_assert_num_queries(0):
        assert Item.cached.get(item.pk).value == 7


def test_memcached_over_tls_with_the_tls_context_of_options(certificate, use_servers, django_assert_num_queries):
    server = ServerProcess(
        "memcached", args=("-Z", "-o", f"ssl_chain_cert={certificate.cert},ssl_key={certificate.key}")
    ).start()
    try:
        context = ssl.create_default_context(cafile=certificate.cert)
        use_servers([server], options={"tls_context": context})
        read_twice(django_assert_num_queries)
        assert get_adapter(ALIAS).clients[server.location].client_pool.get().tls_context is context
    finally:
        server.kill()


def test_an_option_no_memcached_client_takes_is_refused(settings):
    settings.CACHES = {
        **settings.CACHES,
        ALIAS: {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": "127.0.0.1:11211",
            "OPTIONS": {"tls_contxt": object()},
        },
    }
    assert "cachelayer.E004" in [error.id for error in check_settings()]  # (Django's own checks would build the cache)
    with pytest.raises(ImproperlyConfigured, match="tls_contxt"):
        get_adapter(ALIAS)


def redis_location(server: ServerProcess, userinfo: str = "", scheme: str = "redis"):
    return types.SimpleNamespace(kind="redis", location=f"{scheme}://{userinfo}127.0.0.1:{server.port}/0")


@pytest.fixture
def redis_with_users(start_servers):
    port = free_port()
    server = ServerProcess(
        "redis", port=port, args=("--requirepass", "s3cret", "--user", "alice", "on", ">wonder", "~*", "&*", "+@all")
    )
    yield server.start()
    server.kill()


@pytest.mark.parametrize(
    ("userinfo", "options"),
    [("alice:wonder@", None), (":s3cret@", None), ("", {"PASSWORD": "s3cret"})],
    ids=["acl-user-in-url", "password-in-url", "password-in-options"],
)
def test_redis_with_credentials(userinfo, options, redis_with_users, use_servers, django_assert_num_queries):
    use_servers([redis_location(redis_with_users, userinfo)], options=options)
    read_twice(django_assert_num_queries)


def test_redis_with_a_wrong_password_falls_back_to_the_database(redis_with_users, use_servers):
    use_servers([redis_location(redis_with_users, "alice:wrong@")])
    item = Item.objects.create(value=3)
    assert Item.cached.get(item.pk).value == 3  # answered by the database
    assert Item.cached.get(item.pk).value == 3


def test_redis_over_tls(certificate, use_servers, django_assert_num_queries):
    port = free_port()
    server = ServerProcess(
        "redis",
        port=port,
        args=("--port", "0", "--tls-port", str(port), "--tls-cert-file", certificate.cert,
              "--tls-key-file", certificate.key, "--tls-ca-cert-file", certificate.cert, "--tls-auth-clients", "no"),
    ).start()  # fmt: skip
    try:
        options = {"CONNECTION_POOL_KWARGS": {"ssl_ca_certs": certificate.cert}}
        use_servers([redis_location(server, scheme="rediss")], options=options)
        read_twice(django_assert_num_queries)
    finally:
        server.kill()


SASL_PLUGINS = "/usr/lib/x86_64-linux-gnu/sasl2"  # Debian's Cyrus SASL plugins (PLAIN, sasldb)


@pytest.fixture
def sasl_memcached():
    """memcached with SASL (``-S``) over a sasldb of the test's own: user bob, password pw123."""
    if not shutil.which("saslpasswd2") or not os.path.isdir(SASL_PLUGINS):
        pytest.skip("needs Debian's sasl2-bin (saslpasswd2) and libsasl2-modules")
    folder = tempfile.mkdtemp(prefix="cachelayer-sasl-")
    os.chmod(folder, 0o755)
    database = os.path.join(folder, "sasldb2")
    subprocess.run(["saslpasswd2", "-p", "-a", "memcached", "-c", "-f", database, "bob"], input=b"pw123", check=True)
    with open(os.path.join(folder, "memcached.conf"), "w") as conf:
        conf.write(f"mech_list: plain\nsasldb_path: {database}\n")
    for name in ("sasldb2", "memcached.conf"):
        os.chmod(os.path.join(folder, name), 0o644)
    server = ServerProcess("memcached", args=("-S",))
    server.env = {**os.environ, "SASL_CONF_PATH": folder}
    yield server.start()
    server.kill()
    shutil.rmtree(folder)


@pytest.mark.parametrize(("password", "cached"), [("pw123", True), ("wrong", False)])
def test_pylibmc_authenticates_with_sasl(password, cached, sasl_memcached, settings, transactional_db):
    item = Item.objects.create(value=5)
    entry = {
        "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
        "LOCATION": [sasl_memcached.location],
        "OPTIONS": {"binary": True, "username": "bob", "password": password},
    }
    worker = spawn(
        "read-twice",
        {"pk": item.pk, "caches": {**settings.CACHES, ALIAS: entry}},
        {"CACHE_ALIAS": ALIAS, "KEY_PREFIX": "sasl", "SOCKET_TIMEOUT": 0.5},
        # pylibmc's wheel bundles its own libsasl2, which looks for plugins elsewhere
        env={"SASL_PATH": SASL_PLUGINS},
        stdout=subprocess.PIPE,
    )
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0
    answer = json.loads(out.decode().strip().splitlines()[-1])
    assert answer["values"] == [5, 5]
    assert (answer["queries"] == 0) is cached  # a wrong password: the database answers
