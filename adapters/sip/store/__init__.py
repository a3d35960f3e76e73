"""The worker's writes to the event store, off the pjsua2 thread: the storage
thread (Call commands, group commit), the call-centre link, their one retry rule
(``write_path``), audit links, and the ownership of calls a crashed worker left."""
