"""Child processes for test_durability: a zygote that forks writers on demand.

Usage: python _crash_writer.py DB_PATH  (storage key in hex in DCHAT_TEST_KEY)

The zygote imports everything once and prints ``ready``. For each line
``ROUND`` on its stdin it forks a writer and prints the writer's pid, so a
round costs a fork, not an interpreter start-up. A writer opens the database
(migration, unlocking), appends ``ready`` to ``DB_PATH.acks-ROUND``, then
writes forever, appending one line per write only after the write returned:
an appended line is an acknowledged, supposedly durable write. Lines are
``e <entry id>`` for a relay mailbox ``put``, ``m <message id>`` for a
sealed message whose body names its id, ``died ...`` if the writer failed.
``os.write`` on an ``O_APPEND`` file reaches the page cache at once, so a
SIGKILL cannot lose a written line.
"""

from __future__ import annotations

import os
import signal
import sys

from dchat_storage import open_database
from dchat_storage.lowlevel import StorageKey


def _write_forever(path: str, round_no: int, key: StorageKey) -> None:
    acks = os.open(f"{path}.acks-{round_no}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    db = open_database(path, key=key)
    os.write(acks, b"ready\n")
    n = 0
    while True:
        if n % 2:
            message_id = f"{round_no}:{n}".encode().ljust(16, b".")
            db.messages.add(message_id, "in", "id-peer", f"body of {message_id.hex()}", n, n)
            line = f"m {message_id.hex()}\n"
        else:
            envelope = f"round {round_no} envelope {n} ".encode() * 8
            entry_id, _ = db.mailboxes.put(b"crash-box", envelope, float(n))
            line = f"e {entry_id.hex()}\n"
        os.write(acks, line.encode())
        n += 1


def main() -> None:
    path = sys.argv[1]
    key = StorageKey.from_bytes(bytes.fromhex(os.environ["DCHAT_TEST_KEY"]))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps killed writers
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                _write_forever(path, int(line), key)
            except BaseException as exc:  # report it: the test fails on any "died" line
                with open(f"{path}.acks-{int(line)}", "a") as acks:
                    acks.write(f"died {exc!r}\n")
            finally:
                os._exit(1)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
