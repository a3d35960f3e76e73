"""pjsua2 plumbing: the worker's one Endpoint and its event loop, call legs, the
conference-bridge mixer, and admission by the media ioqueue's key budget."""
