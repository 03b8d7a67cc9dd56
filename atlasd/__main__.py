from atlasd.cli import main

raise SystemExit(main())
