"""HTTP routes of the board: projects, tasks, workflow and milestones, workflow templates, CSV import/export."""
