-- Segment counts are counted when read from each member's tier and status (index-only scans), instead
-- of count rows that every event of every partition updated: no hot row serialises the writers.
CREATE INDEX segment_members_tier ON identity.segment_members (tier);
CREATE INDEX segment_members_status ON identity.segment_members (status);
DROP TABLE identity.segment_counts;
