DROP TABLE consumed_events;
DROP TABLE notifications;
