"""The one place that hands out botocore clients.

A client is created once per (profile, service, region, endpoint) and shared by every greenlet and
every account: a request's own credentials (or role) sign its calls through an ``AccountClient`` view
(``_signing``), so accounts create no clients and share the endpoint's connection pool. Measured here,
one shared client beat a session and client per greenlet by about 40% in throughput, and a client per
account cost ~5 ms of CPU (docs/performance/engine-call.md, issue 10). Isolation, where a caller needs it (its own
event hooks), is a fresh client from the shared session: see docs/architecture.md.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import botocore.client
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.loaders
import botocore.session

from . import _botocore_fast
from ._attempts import install_attempt_hooks
from ._config import Config
from ._errors import IDENTITY_MISMATCH, suggest
from ._http import install_http_session, pool_size
from ._models import ROLE_ARN, Request, RequestError, account_of_role
from ._signing import AccountClient, RoleCredentials, frozen_record, share_credentials
from ._unreadable_errors import unreadable_error

__all__ = ["ClientCache", "frozen_credentials"]

# S3 signs some calls with session credentials from a per-client S3 Express identity cache keyed by
# bucket only: shared across accounts, one account's session could sign another's call. So S3 keeps a
# client per credentials.
_OWN_CLIENT_SERVICES = frozenset({"s3"})


class ClientCache:
    """Sessions per profile (sharing one data loader) and an LRU of clients keyed without secrets."""

    def __init__(self, config: Config):
        _install_class_sharing()
        _botocore_fast.install()  # botocore's request headers without email.message (version-guarded)
        self.config = config
        self._loader = botocore.loaders.create_loader()
        self._sessions: dict[str | None, botocore.session.Session] = {}
        # An LRU of clients: the most recently used last. A hit reads it without the lock (``_cached``);
        # making, adding and evicting a client take the lock.
        self._clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._max_clients = config.max_clients
        self._lock = threading.RLock()  # guards _sessions, _roles and a miss in _clients
        self._retry = {"mode": config.retry_mode, "total_max_attempts": config.max_attempts}
        self._roles: dict[tuple[str | None, str], botocore.credentials.Credentials] = {}
        self._own: dict[str | None, str] = {}  # profile -> the account its own credentials are (once seen)
        self.created = 0

    def session(self, profile: str | None) -> botocore.session.Session:
        with self._lock:
            session = self._sessions.get(profile)
            if session is None:
                session = botocore.session.Session(profile=profile)
                session.register_component("data_loader", self._loader)
                _SHARED_EMITTERS.add(session.get_component("event_emitter"))
                self._sessions[profile] = session
            return session

    def services(self) -> list[str]:
        names: list[str] = self.session(None).get_available_services()  # botocore ships no types
        return names

    def client(self, request: Request, *, isolated: bool = False) -> Any:
        """The client for this request: the shared one for its (profile, service, region, endpoint),
        seen through the request's own credentials (``AccountClient``) when it has credentials or a role.

        Accounts create no clients (see ``_signing``), so the LRU holds one entry per regional endpoint,
        not per account. ``isolated`` (own event hooks) and S3 (below) still get a client of their own.
        A request for an account that would run as another raises RequestError (``check_identity``)."""
        if request.account is not None or request.role is not None:
            self.check_identity(request)
        raw = request.credentials
        if raw is None and request.role:
            raw = self._role(request)
        if isolated:
            return self._create(request, frozen_credentials(raw))
        if raw is not None and request.service in _OWN_CLIENT_SERVICES:
            creds = frozen_credentials(raw)
            key: tuple[Any, ...] = (
                request.service,
                request.region,
                request.identity,
                request.endpoint_url,
                _fingerprint(creds),
            )
            return self._cached(key, request, creds)
        base = self._cached(
            (request.profile, request.service, request.region, request.endpoint_url), request, None
        )
        if raw is None:
            return base
        # an account's assumed role (the inventory's every request) signs as it is: no look at its type
        return AccountClient(base, raw if type(raw) is RoleCredentials else _signing(raw))

    def check_identity(self, request: Request) -> None:
        """The guard at the seam: a request for an account runs as that account or not at all.

        Compared with what is already known, with no call: the account the request's credentials were
        assumed for (``RoleCredentials``, an STS record's ``AccountId``), its role ARN's account, and,
        for a request with neither, the account this profile's own credentials were seen to be (an
        earlier GetCallerIdentity). Unknown is not a mismatch: a bare STS record can still be used."""
        want = request.account
        role_account = account_of_role(request.role) if request.role is not None else None
        if want is None:
            want = role_account
        elif role_account is not None and role_account != want:
            raise _mismatch(want, role_account, f"its role {request.role} is in account {role_account}")
        if want is None:
            return
        credentials = request.credentials
        if credentials is not None:
            have = (
                credentials.assumed_for
                if type(credentials) is RoleCredentials
                else account_of_credentials(credentials)
            )
            if have is not None and have != want:
                raise _mismatch(want, have, f"its credentials were assumed in account {have}")
        elif request.role is None:
            own = self._own.get(request.profile)
            if own is not None and own != want:
                raise _mismatch(
                    want, own, f"it has no role or credentials, and the caller's own are account {own}'s"
                )

    def note_own_account(self, profile: str | None, account: Any) -> None:
        """The account a profile's own credentials belong to, as GetCallerIdentity answered."""
        if isinstance(account, str) and account:
            self._own[profile] = account

    def _cached(
        self, key: tuple[Any, ...], request: Request, creds: botocore.credentials.ReadOnlyCredentials | None
    ) -> Any:
        """The cached client for ``key``, made on a miss. A hit takes no lock: ``OrderedDict.get`` and
        ``move_to_end`` are each one atomic step in CPython (C code, under the GIL), so the recency
        order is the order of the hits' ``move_to_end``, on threads as on greenlets, and an eviction
        takes the least recently used as ever. A hit on a client evicted between its ``get`` and its
        ``move_to_end`` still uses that client, as a hit just before the eviction would have."""
        clients = self._clients
        client = clients.get(key)
        if client is not None:
            try:
                clients.move_to_end(key)
            except KeyError:  # evicted in between, by another thread
                pass
            return client
        with self._lock:
            client = clients.get(key)
            if client is not None:  # made by another thread while this one waited
                clients.move_to_end(key)
                return client
            client = self._create(request, creds)
            if creds is None:
                share_credentials(client)
            clients[key] = client
            while len(clients) > self._max_clients:
                clients.popitem(last=False)
            return client

    def _role(self, request: Request) -> botocore.credentials.Credentials | None:
        """Refreshable credentials for the request's ``role``, assumed from its profile's credentials.

        One per (profile, role): botocore refreshes them before they expire, and its refresh lock
        makes the first calls of a batch share one AssumeRole."""
        if not request.role:
            return None
        if not ROLE_ARN.match(request.role):
            raise RequestError(
                f"role {request.role!r} is not an IAM role ARN; expected "
                "arn:<partition>:iam::<12-digit account>:role/<name>",
                code="InvalidRole",
            )
        key = (request.profile, request.role)
        with self._lock:
            creds = self._roles.get(key)
            if creds is None:
                session = self.session(request.profile)
                source = session.get_credentials()
                if source is None:
                    raise botocore.exceptions.NoCredentialsError()
                create = functools.partial(
                    session.create_client,
                    region_name=self.config.home_region,
                    endpoint_url=self.config.endpoint_url,
                )
                fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
                    create, source, request.role, extra_args={"RoleSessionName": "greenfetch"}
                )
                creds = self._roles[key] = botocore.credentials.DeferredRefreshableCredentials(
                    fetcher.fetch_credentials, "assume-role"
                )
            return creds

    def _create(self, request: Request, creds: botocore.credentials.ReadOnlyCredentials | None) -> Any:
        session = self.session(request.profile)
        if request.service not in session.get_available_services():
            raise _unknown_service(request.service, session.get_available_services())
        keys: dict[str, Any] = {}
        if creds is not None:
            keys = {
                "aws_access_key_id": creds.access_key,
                "aws_secret_access_key": creds.secret_key,
                "aws_session_token": creds.token,
            }
        cfg = botocore.config.Config(
            retries=self._retry,
            max_pool_connections=pool_size(self.config.concurrency),
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
        )
        try:
            client = session.create_client(
                request.service,
                region_name=request.region,
                endpoint_url=request.endpoint_url,
                config=cfg,
                **keys,
            )
        except botocore.exceptions.NoRegionError:
            raise RequestError(
                f"no region for service {request.service!r}: set 'region' in the request, --region, or AWS_REGION "
                "(e.g. us-east-1)",
                code="NoRegion",
            ) from None
        except botocore.exceptions.ProfileNotFound as exc:
            raise RequestError(
                f"profile {request.profile!r} not found: {exc}", code="ProfileNotFound"
            ) from None
        install_http_session(client, self.config)
        _memoize_user_agent(client)
        install_attempt_hooks(client)
        client.meta.events.register("before-parse", _unreadable_answer, unique_id="greenfetch-unreadable")
        self.created += 1
        return client

    def close(self) -> None:
        with self._lock:
            for client in list(self._clients.values()):  # a copy: a hit may reorder it meanwhile
                client.close()
            self._clients.clear()


# An empty error in each protocol: what an unreadable body is replaced with, so that botocore's parser
# reads the answer without a fault (the XML protocols' default is ``<Error/>``)
_EMPTY_ERROR = {"json": b"{}", "rest-json": b"{}", "smithy-rpc-v2-cbor": b"\xa0"}


def _unreadable_answer(
    operation_model: Any, response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """botocore's ``before-parse``: an error answer whose body is not the protocol's error format
    (``_unreadable_errors.unreadable_error``) becomes one AWS error, ``HTTP<status>`` with a short
    message, before botocore's parser sees it. Its retry handler then retries a 500, 502, 503 or 504
    under the one retry policy (standard mode, the Config's attempts) like any 5xx, and a 4xx is not
    retried."""
    status = response_dict["status_code"]
    if status < 400:
        return
    body = response_dict["body"]
    if not isinstance(body, bytes):
        return
    service = operation_model.service_model
    protocol = getattr(service, "resolved_protocol", None) or service.protocol
    error = unreadable_error(protocol, status, body, response_dict["headers"].get("content-type", ""))
    if error is None:
        return
    response_dict["body"] = _EMPTY_ERROR.get(protocol, b"<Error/>")
    customized_response_dict["Error"] = {"Code": error[0], "Message": error[1]}


def account_of_credentials(value: Any) -> str | None:
    """The account credentials were assumed in, when they say (without refreshing them): what the guard
    compares, and what sealed credentials carry to a worker process (botocore 1.36's frozen credentials
    have no account field, so it is not read from them alone)."""
    if isinstance(value, RoleCredentials):
        return value.assumed_for
    if isinstance(value, Mapping):
        account = value.get("AccountId")
    elif isinstance(value, botocore.credentials.RefreshableCredentials):
        account = getattr(value, "_account_id", None)
    else:
        account = getattr(value, "account_id", None)
    return account if isinstance(account, str) and account else None


def _mismatch(want: str, have: str, why: str) -> RequestError:
    return RequestError(
        f"refused to run a request for account {want} as account {have}: {why}", code=IDENTITY_MISMATCH
    )


def frozen_credentials(value: Any) -> botocore.credentials.ReadOnlyCredentials | None:
    """Frozen credentials from a botocore Credentials object or an STS ``Credentials`` record."""
    if value is None:
        return None
    if isinstance(value, botocore.credentials.Credentials):
        return value.get_frozen_credentials()  # refreshes RefreshableCredentials near expiry
    if isinstance(value, Mapping) and "AccessKeyId" in value:
        return frozen_record(value)
    raise RequestError(
        "credentials must be botocore Credentials or an STS Credentials record "
        "{AccessKeyId, SecretAccessKey, SessionToken}",
        code="InvalidCredentials",
    )


def _signing(value: Any) -> Any:
    """What an AccountClient signs with: a botocore Credentials object as is (so refreshable ones
    refresh when botocore signs), or an STS ``Credentials`` record frozen (with its AccountId, if any,
    for account-based endpoints)."""
    if isinstance(value, botocore.credentials.Credentials):
        return value
    return frozen_credentials(value)  # a record frozen; the one-line error for anything else


def _fingerprint(creds: botocore.credentials.ReadOnlyCredentials | None) -> str | None:
    """A cache key part that changes when credentials rotate, and reveals nothing about them."""
    if creds is None:
        return None
    return hashlib.sha256(f"{creds.access_key}\0{creds.secret_key}".encode()).hexdigest()[:16]


def _unknown_service(name: str, valid: list[str]) -> RequestError:
    near = suggest(name, valid)
    hint = (
        f"; did you mean {', '.join(near)}?"
        if near
        else f"; valid services include {', '.join(valid[:8])}, …"
    )
    return RequestError(
        f"unknown service {name!r}{hint} ({len(valid)} services are known to botocore)",
        code="UnknownService",
        guidance=f"nearest valid names: {', '.join(near)}" if near else None,
    )


# Event emitters of greenfetch's own sessions: only their clients share classes and models (below).
_SHARED_EMITTERS: weakref.WeakSet[Any] = weakref.WeakSet()
_CREATOR: Any = botocore.client.ClientCreator  # private methods, absent from the type stubs
_build_client_class = _CREATOR._create_client_class
_build_service_model = _CREATOR._load_service_model


def _shared(creator: Any, kind: str, service_name: str, version: Any, build: Any) -> Any:
    emitter = creator._event_emitter
    if emitter not in _SHARED_EMITTERS:
        return build()
    # The table lives on the emitter: the classes in it refer back to the emitter (their handlers),
    # so a table keyed by the emitter elsewhere, even weakly, would keep every session alive.
    built: dict[tuple[str, str, Any], Any] = emitter.__dict__.setdefault("_greenfetch_shared", {})
    key = (kind, service_name, version)
    if key not in built:
        built[key] = build()
    return built[key]


def _shared_client_class(self: Any, service_name: str, service_model: Any) -> Any:
    """botocore builds a new client class (hundreds of generated methods: ~1 MB and about half the
    ~17 ms of CPU of an EC2 client) and a new ServiceModel (whose per-operation models it then
    rebuilds) for every client. Both depend only on the service, its API version and the session's
    handlers, so greenfetch's own sessions build them once: an inventory of accounts x regions
    creates thousands of clients. Measured: 16.5 -> 3 ms CPU and about 1.4 -> 0.2 MB per EC2 client."""
    return _shared(
        self,
        "class",
        service_name,
        service_model.api_version,
        lambda: _build_client_class(self, service_name, service_model),
    )


def _shared_service_model(self: Any, service_name: str, api_version: Any = None) -> Any:
    return _shared(
        self,
        "model",
        service_name,
        api_version,
        lambda: _build_service_model(self, service_name, api_version),
    )


def _install_class_sharing() -> None:
    """Route botocore's ClientCreator through the sharing above. Installed by the first ClientCache,
    not at import: importing greenfetch changes nothing in botocore until greenfetch makes a client.
    It only acts for greenfetch's own sessions (``_SHARED_EMITTERS``); other sessions build as ever."""
    if _CREATOR._create_client_class is not _shared_client_class:
        _CREATOR._create_client_class = _shared_client_class
        _CREATOR._load_service_model = _shared_service_model


def _memoize_user_agent(client: Any) -> None:
    """botocore rebuilds the User-Agent string twice per call (~15% of its CPU, profiled here).
    It depends only on the client and the context's feature ids, so build it once per such pair."""
    creator = getattr(client, "_user_agent_creator", None)
    if creator is None or not hasattr(creator, "to_string"):
        return
    try:
        from botocore.context import get_context
    except ImportError:  # older botocore: no per-call features, nothing to key on
        return
    build = creator.to_string
    built: dict[frozenset[str], str] = {}

    def to_string() -> str:
        ctx = get_context()
        key = frozenset(ctx.features) if ctx is not None else frozenset()
        text = built.get(key)
        if text is None:
            text = built[key] = build()
        return text

    creator.to_string = to_string
