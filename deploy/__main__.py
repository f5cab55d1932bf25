"""Run the deploy command: `python -m deploy --help`."""

from deploy.cli import main

raise SystemExit(main())
