"""python -m training.synthetic: write the procedural mask collection (see training/synthetic/collection.py)."""

from training.synthetic.collection import main

raise SystemExit(main())
