"""psycopg 3 against fleetflow's Postgres wire door (run by query/tests/pg_wire.rs).

Exercises what a Python analyst's code does: a default (transactional) connection, the
extended protocol with server-side parameters in text and binary, typed results, errors as
psycopg's exception classes, and company isolation. Exits non-zero on the first failed check.
"""

import argparse
import datetime

import psycopg
from psycopg import errors


def connect(args, user, token):
    return psycopg.connect(
        host=args.host, port=args.port, user=user, password=token, dbname="fleetflow",
        sslmode="disable", connect_timeout=10,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True)
    parser.add_argument("--acme-token", required=True)
    parser.add_argument("--admin-token", required=True)
    args = parser.parse_args()

    with connect(args, "acme", args.acme_token) as conn:
        # Not autocommit: psycopg sends BEGIN first, then the statements, extended protocol.
        day = datetime.date(2020, 12, 1)
        rows = conn.execute(
            "SELECT vehicle, count(*) AS points, min(time) AS first FROM positions"
            " WHERE vehicle = %s AND date = %s GROUP BY vehicle",
            ("v0000", day),
        ).fetchall()
        assert len(rows) == 1, rows
        vehicle, points, first = rows[0]
        assert vehicle == "v0000" and points > 0, rows
        assert isinstance(first, datetime.datetime) and first.tzinfo is not None, first
        assert first.date() == day, first

        # Binary parameters and results.
        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT count(*), sum(distance_m) FROM trips_latest WHERE vehicle = %s AND distance_m > %s",
                ("v0000", 0.5),
            )
            count, distance = cur.fetchone()
            assert count > 0 and distance > 0, (count, distance)

        # Isolation: another company's rows are not there, however asked.
        for sql, params in [
            ("SELECT count(*) FROM positions WHERE company = %s", ("globex",)),
            ("SELECT count(*) FROM trips WHERE vehicle IN (SELECT vehicle FROM trips WHERE company <> %s)", ("acme",)),
            ("SELECT count(*) FROM live_vehicles WHERE company = %s", ("globex",)),
        ]:
            (n,) = conn.execute(sql, params).fetchone()
            assert n == 0, (sql, n)
        conn.commit()

        # Errors arrive as psycopg's classes, and the connection stays usable after a rollback.
        try:
            conn.execute("DROP TABLE trips")
            raise AssertionError("DROP was accepted")
        except errors.ReadOnlySqlTransaction:
            conn.rollback()
        try:
            conn.execute("SELECT nope FROM positions")
            raise AssertionError("a bad column was accepted")
        except errors.SyntaxError as e:
            assert "nope" in str(e), e
            conn.rollback()
        (one,) = conn.execute("SELECT 1").fetchone()
        assert one == 1

        # What drivers and tools ask on their own: the version, settings, the catalog, and an
        # empty statement (a ping), in both protocols.
        assert conn.info.server_version >= 160000, conn.info.server_version
        (version,) = conn.execute("SELECT pg_catalog.version()").fetchone()
        assert version.startswith("PostgreSQL 16"), version
        (scs,) = conn.execute("SHOW standard_conforming_strings").fetchone()
        assert scs == "on", scs
        (level,) = conn.execute("SHOW TRANSACTION ISOLATION LEVEL").fetchone()
        assert level == "read committed", level
        (path,) = conn.execute("SELECT current_setting(%s)", ["search_path"]).fetchone()
        assert path == "public", path
        columns = conn.execute(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)"
            " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON a.attrelid = c.oid"
            " WHERE c.relname = %s AND a.attnum > 0 ORDER BY a.attnum",
            ["trips"],
        ).fetchall()
        assert ("company", "text") in columns and ("date", "date") in columns, columns
        conn.execute(";")
        conn.execute("-- ping", prepare=False)

    with connect(args, "admin", args.admin_token) as conn:
        conn.autocommit = True
        companies = [r[0] for r in conn.execute("SELECT DISTINCT company FROM positions ORDER BY 1")]
        assert companies == ["acme", "globex"], companies

    try:
        connect(args, "acme", "wrong-token")
        raise AssertionError("a wrong token logged in")
    except psycopg.OperationalError:
        pass
    print("psycopg checks passed")


if __name__ == "__main__":
    main()
