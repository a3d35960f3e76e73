"""The life of one call on a B2BUA worker, without a SIP stack.

A call's flow is a state machine fed with the SIP facts its legs report
(``legs``: an INVITE answered, a leg gone, media put on hold, a REFER...) and
answering with plain values (``actions``): SIP actions for the adapter to
perform on its legs, and the domain commands to store. Nothing here imports
pjsua2 or ``adapters`` (an import-linter contract keeps it so): the flows are
unit-tested with fake legs, and ``adapters/sip/sessions/session.py`` only translates
pjsua2 callbacks into facts and actions into pjsua2 calls.

- ``inbound``: who called whom, on which number and tenant (``InboundFacts``);
- ``outcomes``: how a failed leg maps onto the call's disposition;
- ``legs``: the facts a leg reports, and the leg roles;
- ``actions``: what the flow asks its adapter to do;
- ``plain``: the plain bridged call (``PlainCall``).
"""
