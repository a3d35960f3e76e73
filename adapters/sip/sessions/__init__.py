"""One call's adapter between its pjsua2 legs and its flow: the plain bridged call
(``session``, flow in ``application.b2bua``), the IVR front, and the call-centre
sessions (queue, offers, transfers, supervision)."""
