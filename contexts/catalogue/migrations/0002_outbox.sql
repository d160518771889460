-- The catalogue context's outbox: its event log.
SELECT bus.create_outbox('catalogue');
