-- History from before the upgrade enters the change exchange
-- (casmand::db::history): scan events written before casmand stamped
-- changes (by CAsMan, or by casman before the exchange) are given this
-- site's identity with clock 0 when the site first publishes, so sites
-- upgraded one after another exchange them too. Such an event is matched
-- by content, not identity (every site may hold a copy): `nth` is its rank
-- among this site's pre-upgrade events of the same content, and a site
-- receiving it keeps max(copies) of each content. NULL for stamped events.
ALTER TABLE event_origin ADD COLUMN nth INTEGER;
