"""Projects and their boards: tasks, workflow statuses, milestones, templates and CSV import/export."""
