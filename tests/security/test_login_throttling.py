"""Login throttling and user enumeration.

Failed sign-ins are limited per account (5 per window) and per client address
(20); a throttled sign-in is refused before the password is checked, even a
right one. Nothing tells an unknown email from a wrong password: not the
message, not the throttle, not the time taken.
"""

from __future__ import annotations

import itertools
import re
import statistics
import typing as t

from reliability import app_endpoints
from reliability.figures import FIGURES

if t.TYPE_CHECKING:
    from reliability.browser import Reply
    from reliability.stackfixtures import Stack

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
THROTTLED = "Too many failed login attempts. Try again later."
FAILED = "Invalid email or password."
#: Over FLASKSTACK_PASSWORD_MAX_LENGTH: refused without hashing, counted as a failure.
UNHASHED_WRONG = "w" * 300
_addresses = (f"203.0.113.{n}" for n in itertools.count(1))
_networks = (f"2001:db8:{n:x}:0" for n in itertools.count(1))  # /64 prefixes


def _attempt(stack: Stack, email: str, password: str, address: str | None = None) -> Reply:
    browser = stack.browser(client_address=address or next(_addresses))
    return app_endpoints.login(browser, email, password)


def _registered(stack: Stack) -> str:
    email = app_endpoints.write_key()
    assert app_endpoints.register(stack.browser(), email).status == 302
    return email


def _assert_throttled(reply: Reply) -> None:
    assert reply.status == 429, (reply.status, reply.text[:300])
    assert THROTTLED in reply.text
    assert int(reply.header("Retry-After") or 0) >= 1
    # Nothing stored on the server: at most the visitor's signed-cookie session ("~...").
    session = reply.cookies().get("session")
    assert session is None or not session.value or session.value.startswith("~"), session
    FIGURES.add("throttled_logins_refused")


def test_an_account_is_throttled_after_its_limit_even_with_the_right_password(
    shared_stack: Stack,
) -> None:
    email = _registered(shared_stack)
    for _ in range(ACCOUNT_LIMIT):
        reply = _attempt(shared_stack, email, UNHASHED_WRONG)
        assert reply.status == 200
        assert FAILED in reply.text
    _assert_throttled(_attempt(shared_stack, email, app_endpoints.PASSWORD))


def test_an_unknown_email_is_throttled_exactly_like_a_real_one(shared_stack: Stack) -> None:
    email = app_endpoints.write_key()  # never registered
    for _ in range(ACCOUNT_LIMIT):
        reply = _attempt(shared_stack, email, UNHASHED_WRONG)
        assert reply.status == 200
        assert FAILED in reply.text
    _assert_throttled(_attempt(shared_stack, email, app_endpoints.PASSWORD))


def test_an_address_is_throttled_across_accounts(shared_stack: Stack) -> None:
    address = next(_addresses)
    real = _registered(shared_stack)
    for _ in range(ADDRESS_LIMIT):
        reply = _attempt(shared_stack, app_endpoints.write_key(), UNHASHED_WRONG, address)
        assert reply.status == 200
    _assert_throttled(_attempt(shared_stack, real, app_endpoints.PASSWORD, address))
    # Another address still signs in to the same account.
    assert _attempt(shared_stack, real, app_endpoints.PASSWORD).status == 302


def test_ipv6_clients_in_one_network_share_a_throttle(shared_stack: Stack) -> None:
    prefix = next(_networks)
    for n in range(ADDRESS_LIMIT):
        address = f"{prefix}::{n + 2:x}"
        reply = _attempt(shared_stack, app_endpoints.write_key(), UNHASHED_WRONG, address)
        assert reply.status == 200
    _assert_throttled(
        _attempt(shared_stack, app_endpoints.write_key(), UNHASHED_WRONG, f"{prefix}::ffff")
    )


def _page_without_tokens(reply: Reply) -> str:
    text = re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "", reply.text)
    text = re.sub(r'value="[^"]*@example\.test"', "", text)
    return text


def test_an_unknown_email_and_a_wrong_password_look_the_same(shared_stack: Stack) -> None:
    real = _registered(shared_stack)
    unknown = app_endpoints.write_key()
    wrong = "not the password at all"
    known_page = _attempt(shared_stack, real, wrong)
    unknown_page = _attempt(shared_stack, unknown, wrong)
    assert known_page.status == unknown_page.status == 200
    assert _page_without_tokens(known_page) == _page_without_tokens(unknown_page)
    assert set(known_page.cookies()) == set(unknown_page.cookies())
    FIGURES.add("enumeration_probes", 2)


def test_an_unknown_email_takes_as_long_as_a_wrong_password(shared_stack: Stack) -> None:
    """Both hash a password: the timing spread is a ratio near 1, not the ~20x of no hashing.

    The bound is loose on purpose (a busy machine is noisy); the figures are reported.
    """
    wrong = "not the password at all"
    accounts = [_registered(shared_stack) for _ in range(2)]
    for _ in range(4):  # every worker has made its dummy hash before measuring
        _attempt(shared_stack, app_endpoints.write_key(), wrong)
    known: list[float] = []
    unknown: list[float] = []
    for round_ in range(3):
        for account in accounts:
            known.append(_attempt(shared_stack, account, wrong).elapsed)
            unknown.append(_attempt(shared_stack, f"nobody{round_}-{account}", wrong).elapsed)
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    ratio = max(known_median, unknown_median) / min(known_median, unknown_median)
    FIGURES.add("enumeration_probes", len(known) + len(unknown))
    FIGURES.detail(
        "login_timing",
        {
            "known_email_median_ms": round(known_median * 1000, 1),
            "unknown_email_median_ms": round(unknown_median * 1000, 1),
            "ratio": round(ratio, 2),
        },
    )
    assert ratio < 3.0, (known, unknown)
