"""Which abuse limits each attempt is charged against (the table is in the README).

Every charge is taken before the attempt's work: a refused attempt costs no operator
check, no text message, no database write. The configured unlimited networks (places
that act for many citizens: pishkhan offices; loopback outside production, where the
simulator and benchmarks run) are spared every limit but the overall ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.identity.domain.attempts import MustWait
from services.identity.domain.limits import Charge, Limit, WindowCounters
from services.identity.domain.networks import client_network, in_networks, parse_networks
from services.identity.settings import IdentitySettings

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
LOOPBACK = "127.0.0.0/8, ::1/128"


def _per_hour(name: str, allowed: int) -> Limit:
    return Limit(name, allowed, HOUR)


def _per_minute(name: str, allowed: int) -> Limit:
    return Limit(name, allowed, MINUTE)


class AbuseLimits:
    """The service's limits and their counters; made once per process."""

    def __init__(self, settings: IdentitySettings) -> None:
        s = settings
        self.registration_per_national_id = _per_hour(
            "registrations_per_national_id", s.registrations_per_national_id_per_hour
        )
        self.registration_per_mobile = _per_hour(
            "registrations_per_mobile", s.registrations_per_mobile_per_hour
        )
        self.registration_per_network = _per_hour(
            "registrations_per_network", s.registrations_per_network_per_hour
        )
        self.registrations = _per_minute("registrations", s.registrations_per_minute)
        self.code_send_per_national_id = _per_hour(
            "code_sends_per_national_id", s.code_sends_per_national_id_per_hour
        )
        self.code_send_per_mobile = _per_hour(
            "code_sends_per_mobile", s.code_sends_per_mobile_per_hour
        )
        self.code_send_per_network = _per_hour(
            "code_sends_per_network", s.code_sends_per_network_per_hour
        )
        self.code_sends = _per_minute("code_sends", s.code_sends_per_minute)
        self.sign_in_per_national_id_and_network = _per_hour(
            "sign_ins_per_national_id_and_network",
            s.sign_ins_per_national_id_and_network_per_hour,
        )
        self.sign_in_per_network = _per_hour(
            "sign_ins_per_network", s.sign_ins_per_network_per_hour
        )
        self.sign_ins = _per_minute("sign_ins", s.sign_ins_per_minute)
        unlimited = s.unlimited_networks
        if unlimited is None:
            # The simulator and benchmarks act from loopback; in production nobody does.
            unlimited = LOOPBACK if s.environment != "production" else ""
        self._unlimited = parse_networks(unlimited)
        self._counters = WindowCounters()

    def unlimited(self, client_address: str) -> bool:
        """Whether only the overall limits apply to this address (and no network lockout)."""
        return in_networks(client_address, self._unlimited)

    def _take(self, charges: list[Charge], now: datetime) -> None:
        refused = self._counters.take(charges, now)
        if refused is not None:
            limit, until = refused
            raise MustWait("too_many_requests", until, now, limit=limit.name)

    def _network(self, limit: Limit, client_address: str) -> list[Charge]:
        if self.unlimited(client_address):
            return []
        return [(limit, client_network(client_address))]

    def registration(
        self, national_id: str, mobile: str, client_address: str, now: datetime
    ) -> None:
        """Charge a registration (normalised national ID and mobile), or raise `MustWait`."""
        charges: list[Charge] = [(self.registrations, "all")]
        if not self.unlimited(client_address):
            charges += [
                (self.registration_per_network, client_network(client_address)),
                (self.registration_per_national_id, national_id),
                (self.registration_per_mobile, mobile),
            ]
        self._take(charges, now)

    def code_request(self, client_address: str, now: datetime) -> None:
        """Charge a code request before anything is read, or raise `MustWait`."""
        self._take(
            [(self.code_sends, "all"), *self._network(self.code_send_per_network, client_address)],
            now,
        )

    def code_send(self, citizen: str, mobile: str, client_address: str, now: datetime) -> None:
        """Charge a code about to be sent to a citizen (their pseudonym) at this mobile; a
        request refused for another reason (sent moments ago) is not charged here."""
        if self.unlimited(client_address):
            return
        self._take(
            [(self.code_send_per_national_id, citizen), (self.code_send_per_mobile, mobile)],
            now,
        )

    def sign_in(self, citizen: str, client_address: str, now: datetime) -> None:
        """Charge a sign-in attempt of a citizen (their pseudonym), or raise `MustWait`."""
        charges: list[Charge] = [(self.sign_ins, "all")]
        if not self.unlimited(client_address):
            network = client_network(client_address)
            charges += [
                (self.sign_in_per_network, network),
                (self.sign_in_per_national_id_and_network, f"{citizen} {network}"),
            ]
        self._take(charges, now)
