"""What a worker reads to route: the dialplan, the directory of numbers, queues,
agents and IVR menus, and the follower of the log that brings offers and
call-control requests."""
