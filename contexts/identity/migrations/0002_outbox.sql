-- The identity context's outbox: its event log.
SELECT bus.create_outbox('identity');
