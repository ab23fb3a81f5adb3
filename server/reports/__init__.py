"""Reports: KPIs and portfolio per audience (``kpis``), pivots and CSV (``pivot``), and their routes (``routes``)."""
