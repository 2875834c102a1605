"""``python -m authd`` runs the command line."""

from authd.cli import main

raise SystemExit(main())
