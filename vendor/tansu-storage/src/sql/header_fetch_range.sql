-- -*- mode: sql; sql-product: postgres; -*-
-- fleetflow patch: the headers of every record of a fetch, offsets $4 to $5 inclusive, in one
-- query (header_fetch.sql is one record's). Licensed as the rest of this crate (Apache-2.0).

select r.offset_id, h.k, h.v
from header h
join record r on h.topition = r.topition and h.offset_id = r.offset_id
join topition tp on tp.id = r.topition
join topic t on tp.topic = t.id
join cluster c on t.cluster = c.id
where c.name = $1
and t.name = $2
and tp.partition = $3
and r.offset_id >= $4
and r.offset_id <= $5
order by r.offset_id, h.rowid;
