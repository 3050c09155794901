"""python -m lstm_viz: see lstm_viz.cli."""

from .cli import main

raise SystemExit(main())
