"""Everything socket-side: ``/ws`` (``realtime``), ``/yjs`` (``notes_ws``), what the REST API tells sockets
(``updates``), live KPIs (``report_live``), the control bus, admission, channel policy, the outbox and session
sweeps."""
