"""The peers the store is measured against: raw py-lmdb, a sqlite3 store, eventsourcing."""
