"""Serve the gridcollect API on gunicorn: ``gridcollect serve``, from a checkout.

    python server.py [--host 127.0.0.1] [--port 8000] [--db PATH] [--standards DIR]
                     [--demo] [--workers N] [--threads N] [--collect-window DAYS]
                     [--trusted-proxies N]

Every option is ``gridcollect serve``'s (``gridcollect serve --help``).
"""
import sys

from gridcollect.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]], prog_name="server.py")
