"""The notes list is live: creating, renaming, sharing, making internal and deleting a note reach the project's
streams, and the shared stream only while customers may see the note."""

from __future__ import annotations

from channels.client import TandemClient
from tests.nodes import Api, Node, connect, next_data
from tests.workspace import Workspace


async def test_note_changes_reach_each_audience(
    two_nodes: list[Node], database: tuple[str, Workspace], clients: list[TandemClient]
) -> None:
    a, b = two_nodes
    ws = database[1]
    px = ws.ids["px"]
    customer_board = await connect(clients, b, ws, "customer")
    await customer_board.subscribe(f"project:{px}:shared")
    staff_board = await connect(clients, a, ws, "staff")
    await staff_board.subscribe(f"project:{px}:staff")
    staff = Api(a, ws, "staff")
    try:
        # An internal note: staff hear of it, customers do not (their next event is the shared note below).
        internal = await staff.client.post(
            f"/api/projects/{px}/notes", json={"title": "Draft", "visibility": "internal"}
        )
        assert internal.status_code == 201, internal.text
        event = await next_data(staff_board)
        assert event["type"] == "note.updated" and event["note"]["id"] == internal.json()["id"]

        shared = await staff.client.post(f"/api/projects/{px}/notes", json={"title": "Minutes", "visibility": "shared"})
        note_id = shared.json()["id"]
        for board in (staff_board, customer_board):
            event = await next_data(board)
            assert event["type"] == "note.updated" and event["note"]["id"] == note_id
            assert event["note"]["title"] == "Minutes"

        renamed = await staff.client.patch(f"/api/notes/{note_id}", json={"title": "Minutes, 3 May"})
        assert renamed.status_code == 200
        for board in (staff_board, customer_board):
            event = await next_data(board)
            assert event == {"type": "note.updated", "note": renamed.json()}

        hidden = await staff.client.patch(f"/api/notes/{note_id}", json={"visibility": "internal"})
        assert hidden.status_code == 200
        event = await next_data(staff_board)
        assert event["type"] == "note.updated" and event["note"]["visibility"] == "internal"
        # The customer is told only that it is gone, never what it became.
        assert await next_data(customer_board) == {"type": "note.removed", "note_id": note_id}

        shared_again = await staff.client.patch(f"/api/notes/{note_id}", json={"visibility": "shared"})
        assert shared_again.status_code == 200
        assert (await next_data(customer_board))["note"]["visibility"] == "shared"
        assert (await next_data(staff_board))["type"] == "note.updated"

        assert (await staff.client.delete(f"/api/notes/{note_id}")).status_code == 204
        for board in (staff_board, customer_board):
            assert await next_data(board) == {"type": "note.removed", "note_id": note_id}
        # Deleting the internal note tells staff only: the customer's stream stays quiet (its next frame would be
        # the event below, had anything leaked).
        assert (await staff.client.delete(f"/api/notes/{internal.json()['id']}")).status_code == 204
        assert await next_data(staff_board) == {"type": "note.removed", "note_id": internal.json()["id"]}
        marker = await staff.client.post(f"/api/projects/{px}/notes", json={"title": "Marker", "visibility": "shared"})
        assert (await next_data(customer_board))["note"]["id"] == marker.json()["id"]
    finally:
        await staff.aclose()
