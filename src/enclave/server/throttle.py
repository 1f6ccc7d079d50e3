"""Sign-in throttling in PostgreSQL, so that every server replica counts the same failures.

Counting by user name alone would let anyone lock any user out, and counting by address
alone would let guessing spread over many names go on. So a sign-in is refused after
repeated failures for this name from this address, after many failures from this address
for any names, or after very many for this name from anywhere (an admin can unlock it).
"""

from enclave.pipeline.store import Store, connected


class LoginThrottle:
    """Refuses sign-ins after repeated failures within a window."""

    def __init__(
        self,
        store: Store,
        per_name_and_address: int = 5,
        per_address: int = 20,
        per_name: int = 50,
        window_s: int = 300,
    ):
        self.store = store
        self.limits = (per_name_and_address, per_address, per_name)
        self.window = window_s

    @connected
    def blocked(self, name: str, address: str) -> bool:
        row = self.store.conn.execute(
            "select count(*) filter (where user_name = %(n)s and address = %(a)s) as pair, "
            "count(*) filter (where address = %(a)s) as address, "
            "count(*) filter (where user_name = %(n)s) as name from sign_in_failures "
            "where at > now() - make_interval(secs => %(w)s) "
            "and (user_name = %(n)s or address = %(a)s)",
            {"n": name, "a": address, "w": self.window},
        ).fetchone()
        assert row is not None
        return any(n >= limit for n, limit in zip(row.values(), self.limits, strict=True))

    @connected
    def failed(self, name: str, address: str) -> None:
        with self.store.conn.transaction():
            self.store.conn.execute(
                "delete from sign_in_failures where at < now() - make_interval(secs => %s)",
                [self.window],
            )
            self.store.conn.execute(
                "insert into sign_in_failures (user_name, address) values (%s, %s)",
                [name, address],
            )

    @connected
    def succeeded(self, name: str, address: str) -> None:
        self.store.conn.execute(
            "delete from sign_in_failures where user_name = %s and address = %s", [name, address]
        )

    @connected
    def unlock(self, name: str) -> int:
        """Forget a user name's failures (an admin's unlock); how many there were."""
        cur = self.store.conn.execute("delete from sign_in_failures where user_name = %s", [name])
        return cur.rowcount
