"""The policy's list of parents is complete: every item kind that hangs off an item with an audience names it."""

from __future__ import annotations

from sqlmodel import SQLModel

from server.policy import PARENTS


def _has_audience(table_name: str) -> bool:
    table = SQLModel.metadata.tables[table_name]
    return "visibility" in table.c or "audience" in table.c


# References that do not hide the item holding them; what they expose is checked where it is read.
REFERENCES = {
    # A quote is shown only when the quoted comment is itself visible (server/discussion/routes.py comments_out), and a
    # shared comment cannot quote an internal one.
    ("comments", "reply_to_id"),
    # A shared task stays visible under an internal milestone; its milestone's name is not shown to customers.
    ("tasks", "milestone_id"),
}


def test_every_item_that_hangs_off_an_item_with_an_audience_is_listed() -> None:
    listed = {(kind.__tablename__, fk.key) for kind, parents in PARENTS.items() for fk, _ in parents}
    missing = []
    for mapper in SQLModel._sa_registry.mappers:
        table = mapper.local_table
        if not _has_audience(table.name) and table.name != "feedback_requests":
            continue  # not an item a customer could be shown
        for column in table.c:
            for key in column.foreign_keys:
                parent = key.column.table.name
                if _has_audience(parent) and (table.name, column.key) not in listed | REFERENCES:
                    missing.append(f"{table.name}.{column.key} -> {parent}")
    assert not missing, f"add to server.policy.PARENTS: {missing}"
