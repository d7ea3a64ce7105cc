"""Fuzzing every HTTP surface (issue 9) against the real app: web and workers as processes on a
real Redis. Surfaces: JSON bodies (commands, sign-in), query parameters, path parameters,
headers, form fields and uploads. Inputs come from the commands' own msgspec schemas, mutated
(tests/support/fuzzing.py).

Every answer must be below 500, carry the security headers, show no traceback, and come within
the client's generous timeout; and the web process must log nothing that looks like an
unhandled exception. Cases per surface: CASES below (the run prints the counts it made).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.web.form_specs import FormSpec
from app.web.pages.actions import ORDER_ACTIONS, forms_for
from tests.support.api_client import (
    COOKIE,
    GOOD_CARD,
    LOGIN_TOKEN_COOKIE,
    PASSWORDS,
    Identity,
    Storefront,
    running_storefront,
)
from tests.support.fuzzing import (
    FUZZ_COUNTS,
    REGISTRY,
    Raw,
    deep_nesting,
    header_text,
    hostile_text,
    json_bodies,
    numberish,
    to_json,
    valid_commands,
)

CASES = {
    "command bodies": 400,
    "sign-in bodies": 120,
    "query parameters": 250,
    "path parameters": 250,
    "headers": 250,
    "forms and uploads": 400,
}
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")
UNHANDLED = re.compile(r"Traceback|Exception in ASGI|unhandled error|Internal Server Error")
USERS = (None, "admin", "alice")
ADMIN_FORMS = list(forms_for(REGISTRY).values())
LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')


def fuzz_settings(surface: str) -> Any:
    return settings(
        max_examples=CASES[surface],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass
class LogTail:
    """What a process wrote to its log since the last look."""

    path: Path
    offset: int = 0

    def new(self) -> str:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read()
        self.offset += len(text)
        return text.decode(errors="replace")


@dataclass
class Fuzzer:
    storefront: Storefront
    http: httpx.Client
    identities: dict[str, Identity]
    log: LogTail
    counts: Counter[str] = field(default_factory=Counter)

    def request(
        self,
        surface: str,
        method: str,
        url: str,
        *,
        who: str | None = None,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request with only the given identity's cookie; checks the answer and the log."""
        sent = dict(headers or {})
        jar = dict(cookies or {})
        if who is not None:
            identity = self.identities[who]
            jar[COOKIE] = identity.token
            if csrf:
                sent.setdefault("X-CSRF-Token", identity.csrf_token)
        if jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        raw = {name: value.encode("latin-1") for name, value in sent.items()}  # not just ASCII
        try:
            response = self.http.request(method, url, headers=raw, **kwargs)
        finally:
            self.http.cookies.clear()
        self.counts[surface] += 1
        self.check(response)
        return response

    def __repr__(self) -> str:
        return f"Fuzzer({self.storefront.base_url})"

    def check(self, response: httpx.Response) -> None:
        request = f"{response.request.method} {response.request.url}"
        assert response.status_code < 500, (request, response.status_code, response.text[:800])
        missing = [h for h in SECURITY_HEADERS if h not in response.headers]
        assert not missing, (request, response.status_code, missing)
        assert "Traceback" not in response.text, request
        logged = self.log.new()
        assert not UNHANDLED.search(logged), (request, logged[-3000:])

    def login_token(self) -> tuple[str, str]:
        """A fresh pre-session pair from GET /login: (cookie value, form field)."""
        page = self.http.get("/login")
        found = LOGIN_TOKEN.search(page.text)
        cookie = page.cookies.get(LOGIN_TOKEN_COOKIE)
        self.http.cookies.clear()
        assert found is not None and cookie is not None, page.text[:500]
        return cookie, found.group(1)


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("fuzz"), workers=("commands", "projector", "process")
    ) as made:
        yield made


@pytest.fixture(scope="module")
def fuzz(storefront: Storefront, request: pytest.FixtureRequest) -> Iterator[Fuzzer]:
    identities = {name: storefront.identity(name) for name in ("admin", "alice")}
    log = LogTail(storefront.web.log)
    log.new()  # start-up lines are not the fuzzer's business
    with httpx.Client(base_url=storefront.base_url, timeout=60) as http:
        made = Fuzzer(storefront, http, identities, log)
        yield made
    request.config.stash.setdefault(FUZZ_COUNTS, Counter()).update(made.counts)
    for proc in storefront.group.procs:  # the workers ran whatever valid commands came
        assert not UNHANDLED.search(proc.output()), (proc.name, proc.output()[-3000:])


# --- JSON bodies ------------------------------------------------------------------------------

content_types = st.sampled_from(
    ["application/json", "application/json", "application/json; charset=utf-8", "text/plain"]
)


@fuzz_settings("command bodies")
@given(
    body=json_bodies(valid_commands()),
    who=st.sampled_from(USERS),
    content_type=content_types,
    idempotency_key=st.none() | header_text,
    prefer=st.none() | st.sampled_from(["respond-async", "respond-async, wait=1"]) | header_text,
)
def test_command_bodies(
    fuzz: Fuzzer,
    body: bytes,
    who: str | None,
    content_type: str,
    idempotency_key: str | None,
    prefer: str | None,
) -> None:
    headers = {"Content-Type": content_type}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if prefer is not None:
        headers["Prefer"] = prefer
    fuzz.request("command bodies", "POST", "/api/commands", who=who, headers=headers, content=body)


credentials = st.fixed_dictionaries(
    {
        "username": st.sampled_from(sorted(PASSWORDS)) | hostile_text,
        "password": st.sampled_from(sorted(PASSWORDS.values())) | hostile_text,
    }
)


@fuzz_settings("sign-in bodies")
@given(
    body=json_bodies(credentials),
    address=st.sampled_from(["10.1.0.1", "10.1.0.2", "2001:db8::1", "10.1.0.3"]),
    site=st.sampled_from([{}, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "none"}]),
)
def test_sign_in_bodies(fuzz: Fuzzer, body: bytes, address: str, site: dict[str, str]) -> None:
    headers = {"Content-Type": "application/json", "X-Forwarded-For": address, **site}
    fuzz.request("sign-in bodies", "POST", "/api/session", headers=headers, content=body)


# --- query and path parameters ----------------------------------------------------------------

QUERY_ROUTES = {
    "/api/products": ("limit", "after", "min_position"),
    "/api/orders": ("limit", "min_position"),
    "/api/admin/status": ("min_position",),
    "/api/admin/sales": ("min_position",),
    "/api/notifications": ("min_position",),
    "/": ("after",),
    "/fragments/catalog": ("after",),
    "/fragments/orders": ("all",),
    "/login": ("next",),
    "/admin/catalog": ("after",),
    "/checkout": (),
    "/metrics": (),
}


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A route and its query: its own parameters with number-ish or hostile values, and maybe
    an unknown or repeated one."""
    path = draw(st.sampled_from(sorted(QUERY_ROUTES)))
    names = list(QUERY_ROUTES[path]) or ["x"]
    values = numberish | numberish | hostile_text
    params = [(name, draw(values)) for name in names if draw(st.booleans())]
    extra = st.tuples(hostile_text | st.sampled_from(names), hostile_text)
    return path, params + draw(st.lists(extra, max_size=2))


@fuzz_settings("query parameters")
@given(query=queries(), who=st.sampled_from(USERS), html=st.booleans())
def test_query_parameters(
    fuzz: Fuzzer, query: tuple[str, list[tuple[str, str]]], who: str | None, html: bool
) -> None:
    path, params = query
    headers = {"Accept": "text/html"} if html else {}
    fuzz.request("query parameters", "GET", path, who=who, params=params, headers=headers)


PATH_ROUTES = [
    ("GET", "/api/products/{}"),
    ("GET", "/api/commands/{}"),
    ("GET", "/api/orders/{}"),
    ("GET", "/orders/{}"),
    ("GET", "/commands/{}"),
    ("GET", "/fragments/orders/{}"),
    ("GET", "/fragments/commands/{}"),
    ("POST", "/ui/commands/{}"),
    ("GET", "/static/{}"),
]
segments = st.one_of(
    hostile_text,
    st.from_regex(r"[0-9a-f]{26}-[0-9]{1,6}", fullmatch=True),  # command-id-like
    st.from_regex(r"-[0-9²]{1,400}", fullmatch=True),
    st.sampled_from(["..", "%2e%2e", "CancelOrder", "ImportCatalog", "Ping", "a/b"]),
)


@fuzz_settings("path parameters")
@given(route=st.sampled_from(PATH_ROUTES), segment=segments, who=st.sampled_from(USERS))
def test_path_parameters(
    fuzz: Fuzzer, route: tuple[str, str], segment: str, who: str | None
) -> None:
    method, template = route
    url = template.format(quote(segment, safe=""))
    fuzz.request("path parameters", method, url, who=who, data={} if method == "POST" else None)


# --- headers ----------------------------------------------------------------------------------

HEADER_TARGETS = [
    ("POST", "/api/commands", b'{"type": "DiscontinueProduct", "sku": "NO-SUCH-1"}'),
    ("GET", "/api/orders", None),
    ("GET", "/metrics", None),
    ("POST", "/logout", None),
    ("DELETE", "/api/session", None),
    ("GET", "/", None),
    ("POST", "/api/session", b'{"username": "alice", "password": "wrong"}'),
]
header_names = st.sampled_from(
    [
        "Idempotency-Key",
        "Prefer",
        "Content-Type",
        "Accept",
        "Origin",
        "Sec-Fetch-Site",
        "X-CSRF-Token",
        "Authorization",
        "HX-Request",
        "X-Forwarded-For",
        "Cookie",
        "Accept-Language",
        "Content-Encoding",
        "Range",
    ]
)
cookie_values = st.dictionaries(
    st.sampled_from([COOKIE, LOGIN_TOKEN_COOKIE, "sf_device", "x"]),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,\\"'),
        max_size=200,
    ),
    max_size=3,
)


@fuzz_settings("headers")
@given(
    target=st.sampled_from(HEADER_TARGETS),
    headers=st.dictionaries(header_names, header_text, max_size=5),
    cookies=cookie_values,
    who=st.sampled_from(USERS),
)
def test_headers(
    fuzz: Fuzzer,
    target: tuple[str, str, bytes | None],
    headers: dict[str, str],
    cookies: dict[str, str],
    who: str | None,
) -> None:
    method, path, body = target
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    if "Cookie" in headers:  # a raw Cookie header of its own
        who, cookies = None, {}
    fuzz.request("headers", method, path, who=who, headers=headers, cookies=cookies, content=body)


# --- forms and uploads ------------------------------------------------------------------------

form_values = st.one_of(
    hostile_text,
    numberish,
    st.integers(-(10**6), 10**7).map(str),
    st.sampled_from(["MUG-BLUE", "1", "0", GOOD_CARD, "o" + "0" * 28]),
    deep_nesting().map(lambda raw: raw.text),
)


@st.composite
def rows_text(draw: st.DrawFn, spec: FormSpec) -> str:
    """A rows form's text: CSV rows or a JSON list, from the row Struct's schema, mutated."""
    assert spec.rows is not None
    document = draw(valid_commands().filter(lambda d: d["type"] == spec.type))
    rows = document[spec.rows.field]
    if draw(st.booleans()):
        return to_json(draw(st.one_of(st.just(rows), st.builds(lambda: Raw("[" * 3000)))))
    cells = [[str(row.get(name, "")) for name in spec.rows.columns] for row in rows]
    if cells and draw(st.booleans()):
        row = draw(st.integers(0, len(cells) - 1))
        cells[row][draw(st.integers(0, len(spec.rows.columns) - 1))] = draw(form_values)
    return "\n".join(",".join(f'"{c}"' if "," in c else c for c in r) for r in cells)


def uploads(spec: FormSpec) -> st.SearchStrategy[Any]:
    """A rows form's file: none, or (name, content, type) with rows or any bytes."""
    return st.one_of(
        st.none(),
        st.tuples(
            hostile_text.map(lambda name: name or "x.csv"),
            st.one_of(st.binary(max_size=2048), rows_text(spec).map(str.encode)),
            st.sampled_from(["text/csv", "application/json", "application/octet-stream", "x/y"]),
        ),
    )


@st.composite
def form_posts(draw: st.DrawFn) -> tuple[str, dict[str, str], Any, str | None]:
    """(path, fields, upload, who) for one of the app's forms, with hostile values."""
    form = draw(
        st.sampled_from(["login", "cart", "checkout", "admin", "action", "logout", "other"])
    )
    fields: dict[str, str] = {}
    upload = None
    who: str | None = draw(st.sampled_from(USERS))
    if form == "login":
        path, who = "/login", None
        fields = {
            "username": draw(st.sampled_from(sorted(PASSWORDS)) | hostile_text),
            "password": draw(hostile_text),
            "next": draw(
                st.sampled_from(["/", "//evil.example", "/\\evil.example"]) | hostile_text
            ),
        }
    elif form == "cart":
        path = "/ui/cart"
        fields = {"sku": draw(form_values), "quantity": draw(form_values)}
    elif form == "checkout":
        path = "/ui/orders"
        lines = draw(
            st.dictionaries(hostile_text.map(lambda s: f"qty-{s}"), form_values, max_size=3)
        )
        fields = {**lines, "card_number": draw(form_values)}
    elif form == "admin":
        spec = draw(st.sampled_from(ADMIN_FORMS))
        path = f"/ui/commands/{spec.type}"
        for f in spec.fields:
            if f.kind == "file":
                upload = draw(uploads(spec))
            elif f.kind == "textarea":
                fields[f.name] = draw(rows_text(spec) | form_values)
            elif f.kind == "checkbox" and draw(st.booleans()):
                fields[f.name] = draw(st.sampled_from(["true", "on", ""]))
            elif draw(st.integers(0, 4)):
                fields[f.name] = draw(form_values)
    elif form == "action":
        path = f"/ui/commands/{draw(st.sampled_from(sorted(ORDER_ACTIONS)))}"
        fields = {"order_id": draw(form_values), "reason": draw(form_values)}
    elif form == "logout":
        path = draw(st.sampled_from(["/logout", "/ui/cart/clear", "/ui/notifications/read"]))
    else:
        path = draw(st.sampled_from(["/ui/commands/Nope", "/ui/commands/PlaceOrder", "/login"]))
    if draw(st.booleans()):
        fields["idempotency_key"] = draw(form_values)
    fields.update(draw(st.dictionaries(hostile_text, form_values, max_size=2)))
    return path, fields, upload, who


@fuzz_settings("forms and uploads")
@given(
    post=form_posts(),
    multipart=st.booleans(),
    token=st.sampled_from(["valid", "valid", "garbage", "none"]),
)
def test_forms_and_uploads(
    fuzz: Fuzzer, post: tuple[str, dict[str, str], Any, str | None], multipart: bool, token: str
) -> None:
    path, fields, upload, who = post
    cookies = {}
    if path == "/login" and token != "none":
        cookie, value = fuzz.login_token() if token == "valid" else ("1.x", "garbage")
        cookies[LOGIN_TOKEN_COOKIE] = cookie
        fields["login_token"] = value
    files = None
    if upload is not None:
        files = {"file": upload}
    elif multipart:
        files = {"unused": ("", b"", "text/plain")}  # forces multipart/form-data
    fuzz.request(
        "forms and uploads",
        "POST",
        path,
        who=who,
        headers={"Origin": fuzz.storefront.origin} if who is None else {},
        cookies=cookies,
        data=fields,
        files=files,
    )
