"""A real Subsonic server for the tests: supysonic, set up with its own managers and scanner.

``python _supysonic_server.py WORKDIR MUSIC_DIR USER PASSWORD`` writes a
supysonic config into WORKDIR (SQLite database, caches), adds the user and
MUSIC_DIR as a music folder, scans it, then serves supysonic's WSGI app with
werkzeug's threaded server (flask's own, so no WSGI server beyond supysonic's
dependencies) on 127.0.0.1, on a free port it prints as the first line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from supysonic.config import IniConfig
from supysonic.db import init_database, release_database
from supysonic.managers.folder import FolderManager
from supysonic.managers.user import UserManager
from supysonic.scanner import Scanner
from supysonic.web import create_application
from werkzeug.serving import make_server


def main(workdir: Path, music: Path, user: str, password: str) -> None:
    config_file = workdir / "supysonic.conf"
    config_file.write_text(
        f"[base]\ndatabase_uri = sqlite:///{workdir / 'supysonic.db'}\n"
        f"[webapp]\ncache_dir = {workdir / 'cache'}\nmount_webui = no\nlog_level = ERROR\n"
        f"[daemon]\nsocket = {workdir / 'daemon.sock'}\nrun_watcher = no\n"
    )
    config = IniConfig([str(config_file)])
    init_database(config.BASE["database_uri"])
    UserManager.add(user, password)
    FolderManager.add("music", str(music))
    scanner = Scanner()
    scanner.queue_folder("music")
    scanner.run()  # in this thread: the scan is done when it returns
    release_database()
    server = make_server("127.0.0.1", 0, create_application(config), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
