-- A room's log holds changes as well as messages: a deletion is a row of its
-- own (with the next id, so it reaches clients like a message) naming the
-- message it deletes, whose text is wiped and marked deleted.
ALTER TABLE messages ADD COLUMN deletes INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

-- A message is deleted once: a second deletion finds the first.
CREATE UNIQUE INDEX messages_room_deletes ON messages (room, deletes) WHERE deletes IS NOT NULL;
