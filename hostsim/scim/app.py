"""The connector application: a WSGI app (werkzeug) serving SCIM 2.0 under ``/scim/v2`` and the
connector lifecycle endpoints, for one :class:`~hostsim.runtime.Runtime`.

Routes (all behind :mod:`hostsim.scim.auth`):

- ``/scim/v2/ServiceProviderConfig``, ``/ResourceTypes[/{id}]``, ``/Schemas[/{id}]``
- ``/scim/v2/Users`` (GET list, POST) and ``/Users/{id}`` (GET, PUT, PATCH, DELETE)
- ``/scim/v2/Groups`` (GET list) and ``/Groups/{id}`` (GET, PUT and PATCH of members)
- ``/health`` (``Up`` / ``Down`` / ``Not Configured`` with a reason), ``/test`` (the connector's
  connection check), ``/metadata`` (the connector type, its capabilities and schema)

Every request is routed, then authenticated, then its headers are checked against
:mod:`hostsim.scim.body` (media type 415, announced size 413) before any of its body is read
or any handler runs; a handler reads a body only through :func:`~hostsim.scim.body.read_json`.
Handlers run under :data:`~hostsim.scim.users.IDENTITY_POLICY`, so filters compare ``userName``
and ``emails`` in any case and surrounding whitespace, as the connector does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import frozen
from pydantic import ValidationError
from scim2_models import (
    Context,
    Group,
    NotFoundException,
    Resource,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    SearchRequest,
)
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from hostsim.contract.converter import unstructure
from hostsim.contract.errors import ConfigurationError, ConnectorError, InvalidInput
from hostsim.contract.model import Capability
from hostsim.redaction import Redactor
from hostsim.runtime import Runtime
from hostsim.scim import discovery
from hostsim.scim import errors as scim_errors
from hostsim.scim.auth import Credentials
from hostsim.scim.body import Limits, Refusal, check_headers, read_json
from hostsim.scim.groups import Groups
from hostsim.scim.index import AccountIndex
from hostsim.scim.server import ScimServer
from hostsim.scim.users import CORE_ATTRIBUTES, IDENTITY_POLICY, Users

BASE_PATH = "/scim/v2"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_JSON = "application/scim+json"

log = logging.getLogger("hostsim.scim")

_RULES = Map(
    [
        Rule(f"{BASE_PATH}/ServiceProviderConfig", endpoint="spc", methods=["GET"]),
        Rule(f"{BASE_PATH}/ResourceTypes", endpoint="resource_types", methods=["GET"]),
        Rule(f"{BASE_PATH}/ResourceTypes/<name>", endpoint="resource_type", methods=["GET"]),
        Rule(f"{BASE_PATH}/Schemas", endpoint="schemas", methods=["GET"]),
        Rule(f"{BASE_PATH}/Schemas/<schema_id>", endpoint="schema", methods=["GET"]),
        Rule(f"{BASE_PATH}/.search", endpoint="search", methods=["POST"]),
        Rule(f"{BASE_PATH}/<any(Users, Groups):kind>/.search", endpoint="search", methods=["POST"]),
        Rule(f"{BASE_PATH}/Users", endpoint="users", methods=["GET", "POST"]),
        Rule(
            f"{BASE_PATH}/Users/<native_id>",
            endpoint="user",
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
        Rule(f"{BASE_PATH}/Groups", endpoint="groups", methods=["GET", "POST"]),
        Rule(
            f"{BASE_PATH}/Groups/<native_id>",
            endpoint="group",
            methods=["GET", "PUT", "PATCH", "DELETE"],
        ),
        Rule("/health", endpoint="health", methods=["GET"]),
        Rule("/test", endpoint="test", methods=["GET", "POST"]),
        Rule("/metadata", endpoint="metadata", methods=["GET"]),
    ]
)


def _json(data: Any, status: int = 200, content_type: str = SCIM_JSON) -> Response:
    return Response(json.dumps(data), status=status, content_type=content_type)


def _scim_error(error: Any) -> Response:
    return _json(scim_errors.body(error), status=int(error.status or 500))


class ScimApp:
    """The WSGI application. ``base_url`` (scheme, host, port) makes the ``location`` URLs;
    ``limits`` bound the bodies it reads (:mod:`.body`); ``redact`` masks what it and its server
    log (:mod:`.server`), and learns the credentials' own secrets here, so that even an app
    given no redactor never logs them."""

    def __init__(
        self,
        runtime: Runtime,
        credentials: Credentials,
        base_url: str = "",
        *,
        limits: Limits | None = None,
        redact: Redactor | None = None,
    ) -> None:
        self.runtime = runtime
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.limits = limits or Limits()
        self.redact = redact if redact is not None else Redactor()
        for secret in (credentials.token, credentials.password):
            if secret:
                self.redact.add(secret)
        self._lock = threading.Lock()
        self._users: Users | None = None
        #: UserId/GroupId -> name, shared by every request (see :mod:`.index`).
        self.index = AccountIndex(runtime)

    @property
    def scim_url(self) -> str:
        return f"{self.base_url}{BASE_PATH}"

    @property
    def users(self) -> Users:
        """Made on first use: the extension depends on the connector's attribute mapping."""
        with self._lock:
            if self._users is None:
                extra: list[str] = []
                if Capability.SCHEMA in self.runtime.connector_type.capabilities:
                    extra = [
                        spec.name
                        for spec in self.runtime.schema().attributes
                        if spec.name not in CORE_ATTRIBUTES
                    ]
                self._users = Users(self.runtime, self.scim_url, extra, self.index)
            return self._users

    @property
    def groups(self) -> Groups:
        return Groups(self.runtime, self.scim_url, self.index)

    def warm_up(self) -> float:
        """Build what the first requests would otherwise build while a client waits: the
        connector, the User model of its mapping, and the index (one bulk read of users and
        groups). ``hostsim serve`` runs it in the background as it starts; requests that need
        the index before it is ready wait for the same read, never start a second one.
        Returns the seconds it took."""
        started = time.perf_counter()
        _ = self.users
        if Capability.READ_ACCOUNT in self.runtime.connector_type.capabilities:
            self.index.ensure()
            self.index.group_names()
        return time.perf_counter() - started

    # --- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = _RULES.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed:
            return _scim_error(scim_errors.error(405, f"{request.method} is not supported here"))
        except RouteNotFound:
            return _scim_error(scim_errors.error(404, f"no endpoint {request.path}"))
        except HTTPException as exc:
            return _scim_error(scim_errors.error(exc.code or 400, exc.description or ""))
        if not self.credentials.allows(request.headers.get("Authorization")):
            response = _scim_error(scim_errors.error(401, "authentication required"))
            response.headers["WWW-Authenticate"] = self.credentials.challenge()
            return response
        handler: Callable[..., Response] = getattr(self, f"on_{endpoint}")
        try:
            check_headers(request, self.limits)
            # userName and emails compare as one identity in any spelling, filters included
            with IDENTITY_POLICY:
                return handler(request, **args)
        except Refusal as exc:
            if exc.note:
                log.info("%s", self.redact(f"{request.method} {request.path}: {exc.note}"))
            return _scim_error(exc.error)
        except SCIMException as exc:
            return _scim_error(scim_errors.from_scim(exc))
        except ValidationError as exc:
            return _scim_error(scim_errors.from_validation(exc))
        except ConnectorError as exc:
            return _scim_error(
                scim_errors.from_connector(
                    exc, not_found=404 if request.method in ("GET", "DELETE") else 400
                )
            )
        except Exception:
            failure = f"{request.method} {request.path} failed\n{traceback.format_exc()}"
            log.error("%s", self.redact(failure.rstrip()))
            return _scim_error(scim_errors.error(500, "internal error (see the server log)"))

    # --- helpers -------------------------------------------------------------------------

    def _payload(self, request: Request) -> dict[str, Any]:
        return read_json(request, self.limits)

    @staticmethod
    def _resource(
        resource: Resource[Any],
        status: int = 200,
        location: bool = False,
        request: Request | None = None,
    ) -> Response:
        parameters = None
        if request is not None:
            parameters = Query.from_args(request.args).parameters(type(resource))
        response = _json(_dump(resource, parameters), status=status)
        if location and resource.meta and resource.meta.location:
            response.headers["Location"] = resource.meta.location
        return response

    def _list(self, query: Query, kind: str | None) -> Response:
        """A page of the resources of ``kind`` (None: Users and Groups) matching the query."""
        total, page = self._matching(query, kind)
        return _json(
            {
                "schemas": [LIST_RESPONSE],
                "totalResults": total,
                "startIndex": query.start,
                "itemsPerPage": len(page),
                "Resources": [_dump(item, query.parameters(model)) for model, item in page],
            }
        )

    def _matching(self, query: Query, kind: str | None) -> tuple[int, list[tuple[Any, Any]]]:
        """The number of matches and the page of them. Every filter is parsed before anything
        is read, so an invalid one is refused without a call to the target."""
        users_filter = _parsed(self.users.model, query) if kind in (None, "Users") else None
        groups_filter = _parsed(Group, query) if kind in (None, "Groups") else None
        if kind == "Users":
            total, users = self.users.listing(users_filter, query.start, query.count)
            return total, [(self.users.model, user) for user in users]
        if kind == "Groups":
            total, groups = self.groups.listing(
                groups_filter, query.start, query.count, members=query.wants("members")
            )
            return total, [(Group, group) for group in groups]
        matching: list[tuple[Any, Any]] = []
        for model, items, scim_filter in (
            (self.users.model, self.users.all(), users_filter),
            (Group, self.groups.all(), groups_filter),
        ):
            matching.extend(
                (model, item) for item in items if scim_filter is None or scim_filter.match(item)
            )
        return len(matching), matching[query.start - 1 : query.start - 1 + query.count]

    def _static_list(self, resources: list[Any]) -> Response:
        return _json(
            {
                "schemas": [LIST_RESPONSE],
                "totalResults": len(resources),
                "startIndex": 1,
                "itemsPerPage": len(resources),
                "Resources": [resource.model_dump() for resource in resources],
            }
        )

    # --- discovery -----------------------------------------------------------------------

    def on_spc(self, request: Request) -> Response:
        config = discovery.service_provider_config(
            self.scim_url, self.credentials.schemes, self.limits.max_payload_size
        )
        return _json(config.model_dump())

    def _resource_types(self) -> list[Any]:
        users = self.users
        return discovery.resource_types(
            self.scim_url, users.extension, users.homed, manages_groups=self.groups.manages_groups
        )

    def _schemas(self) -> list[Any]:
        users = self.users
        return discovery.schemas(
            self.scim_url,
            users.extension,
            users.homed,
            policies=users.policies,
            disables=users.disables,
            manages_groups=self.groups.manages_groups,
        )

    def on_resource_types(self, request: Request) -> Response:
        return self._static_list(self._resource_types())

    def on_resource_type(self, request: Request, name: str) -> Response:
        for found in self._resource_types():
            if found.id == name:
                return _json(found.model_dump())
        raise NotFoundException(detail=f"no resource type {name!r}")

    def on_schemas(self, request: Request) -> Response:
        return self._static_list(self._schemas())

    def on_schema(self, request: Request, schema_id: str) -> Response:
        for found in self._schemas():
            if found.id == schema_id:
                return _json(found.model_dump())
        raise NotFoundException(detail=f"no schema {schema_id!r}")

    # --- users ---------------------------------------------------------------------------

    def on_users(self, request: Request) -> Response:
        users = self.users
        if request.method == "POST":
            return self._resource(users.create(self._payload(request)), 201, location=True)
        return self._list(Query.from_args(request.args), "Users")

    def on_search(self, request: Request, kind: str | None = None) -> Response:
        return self._list(Query.from_search(self._payload(request)), kind)

    def on_user(self, request: Request, native_id: str) -> Response:
        users = self.users
        if request.method == "DELETE":
            users.delete(native_id)
            return Response(status=204)
        if request.method == "PUT":
            return self._resource(users.replace(native_id, self._payload(request)))
        if request.method == "PATCH":
            return self._resource(users.patch(native_id, self._payload(request)))
        return self._resource(users.get(native_id), request=request)

    # --- groups --------------------------------------------------------------------------

    def on_groups(self, request: Request) -> Response:
        if request.method == "POST":
            return self._resource(self.groups.create(self._payload(request)), 201, location=True)
        return self._list(Query.from_args(request.args), "Groups")

    def on_group(self, request: Request, native_id: str) -> Response:
        groups = self.groups
        if request.method == "DELETE":
            groups.delete(native_id)
            return Response(status=204)
        if request.method == "PUT":
            return self._resource(groups.replace(native_id, self._payload(request)))
        if request.method == "PATCH":
            return self._resource(groups.patch(native_id, self._payload(request)))
        return self._resource(groups.get(native_id), request=request)

    # --- lifecycle -----------------------------------------------------------------------

    def on_health(self, request: Request) -> Response:
        checked = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            status = self.runtime.test()
        except ConfigurationError as exc:
            return _json(
                {"status": "Not Configured", "reason": exc.message, "checkedAt": checked},
                status=503,
                content_type="application/json",
            )
        except ConnectorError as exc:
            return _json(
                {"status": "Down", "reason": exc.message, "checkedAt": checked},
                status=503,
                content_type="application/json",
            )
        if not status.ok:
            reason = status.message or "the connection check failed"
            return _json(
                {"status": "Down", "reason": reason, "checkedAt": checked},
                status=503,
                content_type="application/json",
            )
        return _json({"status": "Up", "checkedAt": checked}, content_type="application/json")

    def on_test(self, request: Request) -> Response:
        status = self.runtime.test()
        return _json(
            unstructure(status), status=200 if status.ok else 503, content_type="application/json"
        )

    def on_metadata(self, request: Request) -> Response:
        connector_type = self.runtime.connector_type
        data: dict[str, Any] = {
            "connector": connector_type.name,
            "description": connector_type.description,
            "capabilities": sorted(cap.value for cap in connector_type.capabilities),
            "scim": {
                "baseUrl": self.scim_url,
                "resourceTypes": ["User", "Group"],
                "authentication": list(self.credentials.schemes),
            },
        }
        if Capability.SCHEMA in connector_type.capabilities:
            schema = unstructure(self.runtime.schema())
            schema.pop("required_permissions", None)
            data["schema"] = schema
        return _json(data, content_type="application/json")


@frozen
class Query:
    """A list or search: filter, page and the attributes to return (RFC 7644 §3.4.2, §3.9)."""

    filter: str | None = None
    start: int = 1
    count: int = discovery.MAX_RESULTS
    attributes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def make(
        cls,
        filter_text: str | None,
        start: Any,
        count: Any,
        attributes: Iterable[str],
        excluded: Iterable[str],
    ) -> Query:
        return cls(
            filter_text or None,
            max(_integer(start, 1, "startIndex"), 1),
            min(max(_integer(count, discovery.MAX_RESULTS, "count"), 0), discovery.MAX_RESULTS),
            tuple(attributes),
            tuple(excluded),
        )

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Query:
        def names(key: str) -> list[str]:
            return [name.strip() for name in (args.get(key) or "").split(",") if name.strip()]

        return cls.make(
            args.get("filter"),
            args.get("startIndex"),
            args.get("count"),
            names("attributes"),
            names("excludedAttributes"),
        )

    @classmethod
    def from_search(cls, payload: Mapping[str, Any]) -> Query:
        search: SearchRequest[Any] = SearchRequest.model_validate(
            payload, scim_ctx=Context.SEARCH_REQUEST
        )
        return cls.make(
            str(search.filter) if search.filter else None,
            search.start_index,
            search.count,
            [str(name) for name in search.attributes or ()],
            [str(name) for name in search.excluded_attributes or ()],
        )

    def wants(self, attribute: str) -> bool:
        """Whether the response carries ``attribute`` (a top-level name), by ``attributes``
        and ``excludedAttributes``: what need not be read when it is left out."""

        def names(given: tuple[str, ...]) -> set[str]:
            return {name.rsplit(":", 1)[-1].split(".")[0].lower() for name in given}

        wanted = attribute.lower()
        if wanted in names(self.excluded):
            return False
        return not self.attributes or wanted in names(self.attributes)

    def parameters(self, model: Any) -> ResponseParameters[Any] | None:
        if not self.attributes and not self.excluded:
            return None
        data: dict[str, list[str]] = {}
        if self.attributes:
            data["attributes"] = list(self.attributes)
        if self.excluded:
            data["excludedAttributes"] = list(self.excluded)
        return ResponseParameters[model].model_validate(data)


def _parsed(model: Any, query: Query) -> Any | None:
    """The query's filter bound to ``model`` (scim2-models parses and checks it), or None."""
    generic: Any = ScimFilter
    return generic[model](query.filter) if query.filter else None


def _dump(resource: Any, parameters: ResponseParameters[Any] | None) -> dict[str, Any]:
    dumped: dict[str, Any] = resource.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters
    )
    return dumped


def _integer(text: Any, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    if isinstance(text, int):
        return text
    try:
        return int(text)
    except ValueError:
        from scim2_models import InvalidValueException

        raise InvalidValueException(detail=f"{name} must be an integer, got {text!r}") from None


def check_one_account(runtime: Runtime) -> None:
    """Refuse to serve settings that span several target accounts (an organization), before
    the server binds: SCIM has no notion of a target account, and IDHub configures one SCIM
    application per AWS account, so each is served bound to one (``serve --account ID``). A
    bound runtime is bound here, so an account out of scope is refused at start-up too. A
    connector that cannot even open is left to ``/health``, which says why."""
    try:
        if runtime.account_id is not None:
            _ = runtime.connector
            return
        if not runtime.spans_accounts():
            return
    except InvalidInput:
        raise
    except ConnectorError:
        return  # unreachable or misconfigured: /health says so, the first request retries
    try:
        count = str(len(runtime.target_accounts()))
    except ConnectorError:
        count = "several"
    raise ConfigurationError(
        f"these settings span {count} accounts of an organization: serve one with "
        "--account ID; IDHub configures one SCIM application per AWS account "
        "(`hostsim accounts` lists them)"
    )


def make_wsgi_server(app: ScimApp, host: str = "127.0.0.1", port: int = 8080) -> ScimServer:
    """A threaded werkzeug server for ``app`` (port 0 picks a free port), logging through the
    app's redactor; sets ``app.base_url`` from the address it is bound to. Settings spanning
    several target accounts are refused first (:func:`check_one_account`)."""
    check_one_account(app.runtime)
    server = ScimServer(host, port, app, redact=app.redact)
    if not app.base_url:
        shown = f"[{host}]" if ":" in host else host
        app.base_url = f"http://{shown}:{server.server_port}"
    return server
