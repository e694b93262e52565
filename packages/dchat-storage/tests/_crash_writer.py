"""Child process for test_durability: puts envelopes forever, acknowledging each.

Usage: python _crash_writer.py DB_PATH ROUND

It prints ``ready`` once the database is open; after that, a line with the
entry id is written to stdout only after ``put`` returned, so a printed id is an
acknowledged, supposedly durable write.
"""

from __future__ import annotations

import sys

from dchat_storage import open_database


def main() -> None:
    path, round_no = sys.argv[1], int(sys.argv[2])
    db = open_database(path)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    n = 0
    while True:
        envelope = f"round {round_no} envelope {n} ".encode() * 8
        entry_id, _ = db.mailboxes.put(b"crash-box", envelope, float(n))
        sys.stdout.write(entry_id.hex() + "\n")
        sys.stdout.flush()
        n += 1


if __name__ == "__main__":
    main()
