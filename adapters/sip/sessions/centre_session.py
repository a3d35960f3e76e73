"""A call-centre call with agents: offers rung on agents' devices, the talk,
recording, supervisors (see ``centre_front`` for the stages before that).

Call-centre commands go through the ``CentreLink`` thread and their outcome
comes back here: an offer the router timed out a moment before the agent's
200 OK is refused, and the agent is hung up while the caller keeps waiting.
Supervision and transfer requests are handled in ``centre_actions.py``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.media.recorder import CallRecording
from adapters.sip.pjsua.legs import Leg
from adapters.sip.pjsua.mixer import Mixer, Port, conversation, port
from adapters.sip.sessions.centre_front import CentreContext, FrontSession, Stage
from adapters.sip.sessions.session import (
    MEDIA_SAMPLE_INTERVAL,
    SessionContext,
    TimerHandle,
    state_fact,
)
from application.b2bua.actions import Action
from application.b2bua.centre_commands import (
    AcceptOffer,
    CentreCommand,
    CentreDone,
    TransferWaiting,
)
from application.b2bua.consultation import Consult, Consultation
from application.b2bua.control import CallControl
from application.b2bua.inbound import InboundFacts
from application.b2bua.legs import Answered, Gone, LegRole, Ringing
from application.b2bua.offers import (
    CancelOfferTimer,
    DropLeg,
    OfferReserved,
    Offers,
    PlaceAgent,
    RingFailed,
    RingPlaced,
    StartOfferTimer,
    TalkTo,
)
from application.b2bua.plain import Phase, now
from application.b2bua.supervision import Supervision, Watch
from application.b2bua.transfers import Transfers
from application.call_control import AuditLink
from application.routing_view import OfferChange
from domain.call import HangupSide
from domain.call_commands import (
    AnswerCall,
    AttachRecording,
    CallCommand,
    EndCall,
)
from domain.queue import Queue

log = logging.getLogger(__name__)

RECORDING_CHECKS = 100  # x 50 ms: how long a closed recording may take to be completed


class CentreSession(FrontSession):
    def __init__(self, ctx: SessionContext, centre: CentreContext, caller_leg: Leg,
                 facts: InboundFacts) -> None:
        super().__init__(ctx, centre, caller_leg, facts)
        # The rings of the router's offers and the agent who took the call: the flow's.
        self.offers: Offers[Leg] = Offers(self.visit, centre.directory.agent_key, now)
        self._offer_timers: dict[UUID, TimerHandle] = {}
        self.supervision: Supervision[Leg] = Supervision(self.call_id)
        self.consultation: Consultation[Leg] = Consultation(self.call_id)
        self.recording: CallRecording | None = None
        self.mixer = Mixer()
        # The call-control request being handled (centre_actions.handle): what is
        # emitted meanwhile carries out that API command (see application.call_control).
        self.cause: AuditLink | None = None
        # Transfer requests (centre_actions.transfer), decided by the flow.
        self.transfers: Transfers[Leg] = Transfers(self.flow, self.visit, self.consultation,
                                                   centre.directory.queue,
                                                   centre.resolve_number, now)
        self.control: CallControl[Leg] = CallControl(self.transfers, self.supervision,
                                                     self.consultation, centre.free_legs)

    # -- offers ----------------------------------------------------------------------------

    @property
    def agent_id(self) -> UUID | None:
        """The agent talking to the caller."""
        return self.offers.agent_id

    def offer_changed(self, change: OfferChange) -> None:
        if change.kind == "reserved":
            self._run_front(self.offers.reserved(
                OfferReserved(change.agent_id, change.device_uri, change.deadline)))
        elif change.kind in ("missed", "cancelled"):
            self._run_front(self.offers.stop_ring(change.agent_id))

    def _withdraw_rings(self, keep: UUID | None = None) -> None:
        self._run_front(self.offers.withdraw(keep))

    def _perform_front(self, action: Any) -> None:
        """The offers' actions, besides the front's."""
        match action:
            case PlaceAgent(agent_id=agent_id, device_uri=uri, deadline=deadline):
                self._place_agent(agent_id, uri, deadline)
            case StartOfferTimer(agent_id=agent_id, seconds=seconds):
                self._offer_timers[agent_id] = self.ctx.call_later(
                    seconds, lambda: self._offer_timed_out(agent_id))
            case CancelOfferTimer(agent_id=agent_id):
                timer = self._offer_timers.pop(agent_id, None)
                if timer is not None:
                    timer.cancel()
            case DropLeg(leg=leg):
                leg.listener = None  # its DISCONNECTED is ours, not a miss
                leg.end()
            case TalkTo(leg=leg, at=at):
                self._connect_agent(leg, at)
            case _:
                super()._perform_front(action)

    def _place_agent(self, agent_id: UUID, uri: str, deadline: datetime | None) -> None:
        leg = self.ctx.new_leg(LegRole.AGENT)
        leg.listener = self
        if not leg.place(uri):
            leg.detach()
            self._run_front(self.offers.ring_failed(RingFailed(agent_id, uri)))
            return
        self._run_front(self.offers.ring_placed(RingPlaced(agent_id, leg, uri, deadline)))

    def _offer_timed_out(self, agent_id: UUID) -> None:
        self._offer_timers.pop(agent_id, None)
        self._run_front(self.offers.stop_ring(agent_id))

    def _centre_done(self, done: CentreDone) -> None:
        if isinstance(done.command, AcceptOffer):  # heard even after the call's end
            self._run_front(self.offers.accepted(done, self.phase is Phase.ENDED))
        elif isinstance(done.command, TransferWaiting):
            self.transfers.move_done(done)
        else:
            super()._centre_done(done)

    def _connect_agent(self, leg: Leg, at: datetime) -> None:
        self.b = leg
        self._talk(at)
        if leg.disconnected:  # the agent hung up while the answer was being stored
            self._end_answered(HangupSide.CALLEE, "normal_clearing")

    def _talk(self, at: datetime) -> None:
        """The caller and the person on ``b`` talk: answered, bridged, maybe recorded."""
        if not self.ever_answered:
            self._emit(AnswerCall(self.call_id, at))
        self.ever_answered = True
        self.phase, self.stage = Phase.ANSWERED, Stage.TALKING
        self._cancel_stage_timer()
        self.front.silence()
        if self.queue is not None and self.queue.record_calls and self.recording is None \
                and self.centre.recordings is not None:
            self.recording = self.centre.recordings.start(self.call_id)
            log.info("call %s: recording to %s", self.call_id, self.recording.path)
        self._bridge()
        if self.ctx.media is not None and self._timer is None:
            self._timer = self.ctx.call_later(MEDIA_SAMPLE_INTERVAL, self._sample_media)

    def release_agent(self) -> None:
        """The agent leaves the call (a transfer): hang their leg up, start wrap-up."""
        leg, self.b = self.b, None
        if leg is not None:
            leg.listener = None
            leg.end()
        self._run_front(self.offers.release())

    def requeue(self, queue_id: UUID, came_from: UUID | None) -> None:
        """Back to waiting, in another queue (the agent transferred the caller)."""
        self.phase = Phase.ROUTING  # nobody talks to the caller until the next agent
        self.mixer.clear()
        self._enter_queue(queue_id, transferred_from=came_from)

    def dial_after_transfer(self, uri: str) -> None:
        self.phase = Phase.ROUTING
        self.mixer.clear()
        self._dial(uri)

    def refresh_audio(self) -> None:
        self._bridge()


    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None:
        """As the front does; what a move an API command asked for makes carries it out."""
        moved_by, self.transfers.moved_by = self.transfers.moved_by, None
        self.cause = moved_by if isinstance(event, Queue.CallTransferredOut) else None
        try:
            super().queue_left(event)
        finally:
            self.cause = None

    # -- leg callbacks ---------------------------------------------------------------------

    def leg_state(self, leg: Leg) -> None:
        if self.phase is Phase.ENDED:
            return
        ring = self.offers.ring_of(leg)
        watch = self.supervision.on_leg(leg)
        fact = state_fact(leg)
        if ring is not None:
            if isinstance(fact, Ringing | Answered | Gone):
                self._run_front(self.offers.ring_state(ring, fact))
        elif watch is not None:
            self.watch_state(watch)
        elif self.consult is not None and leg is self.consult.leg:
            self.consult_state(leg)
        elif self.phase is Phase.ANSWERED:
            super().leg_state(leg)
        elif leg is self.a and leg.disconnected:
            self._caller_left_front()
        elif leg is self.b and self.stage is Stage.DIALLING:
            self._dialled_state(leg)


    def _finish(self, end: EndCall, answered: bool) -> None:
        self.stage = Stage.ENDED
        self._cancel_stage_timer()
        if self._announce_timer is not None:
            self._announce_timer.cancel()
        self.front.silence()
        self._run_front(self.offers.drop_all())
        recording, self.recording = self.recording, None
        super()._finish(end, answered)
        self.mixer.forget()
        if recording is not None:
            recording.close()
            self._attach(recording, RECORDING_CHECKS)

    def _attach(self, recording: CallRecording, checks: int) -> None:
        """RecordingAvailable once the file is complete (it is finished on the
        bridge's clock, shortly after the recorder is closed)."""
        result = recording.result()
        if result is not None:
            self._emit(AttachRecording(self.call_id, now(), *result))
        elif checks > 0:
            self.ctx.call_later(0.05, lambda: self._attach(recording, checks - 1))
        else:
            log.error("call %s: recording %s never completed", self.call_id, recording.path)

    def _end_all_but(self, keep: Leg | None) -> None:
        extra = self.supervision.drop_all()
        consulted = self.consultation.drop()
        if consulted is not None:
            extra.append(consulted)
        for leg in extra:
            leg.listener = None
            leg.end()
        super()._end_all_but(keep)


    # -- audio -----------------------------------------------------------------------------

    def _bridge(self) -> None:
        if self.phase is not Phase.ANSWERED:
            self.front.refresh()
            return
        waiting = self._waiting_party()
        if waiting is not None:
            self._play_hold_music(waiting)
        self.mixer.apply(self._routes())

    def _unbridge(self) -> None:
        self.mixer.apply(self._routes())

    def _waiting_party(self) -> Leg | None:
        if self.consult is not None:
            return self.a
        return super()._waiting_party()

    def _routes(self) -> set[tuple[Port, Port]]:
        caller, agent = self._parties()
        one = port(caller.audio()) if caller is not None else None
        two = port(agent.audio()) if agent is not None else None
        supervisors = {p: w.mode for w in self.supervision.joined()
                       if (p := port(w.leg.audio())) is not None}
        recorder = port(self.recording.sink) if self.recording is not None else None
        talking = self.held_by is None and self.consult is None and self._waiting_party() is None
        routes = conversation(one, two, supervisors=supervisors, recorder=recorder,
                              talking=talking)
        if self.consult is not None and self.consult.answered and two is not None:
            third = port(self.consult.leg.audio())
            if third is not None:
                routes |= {(two, third), (third, two)}
        return routes

    def _transfer_answered(self, transferor: Leg, new: Leg) -> None:
        # A REFER from the agent (whose place ``new`` took): the agent leaves,
        # their wrap-up starts.
        if new is self.b:
            self._run_front(self.offers.release())
        super()._transfer_answered(transferor, new)

    # -- supervisors (requests: centre_actions.py) ----------------------------------------

    def watch_state(self, watch: Watch[Leg]) -> None:
        """A supervisor's leg changed state: joined (answered) or gone."""
        fact = state_fact(watch.leg)
        if isinstance(fact, Answered):
            # Joined: the request that called them is the cause (or the one being handled).
            self._run(self.supervision.device_answered(watch, self.cause))
        elif isinstance(fact, Gone):
            self._run(self.supervision.device_gone(watch))

    @property
    def consult(self) -> Consult[Leg] | None:
        """The attended transfer in progress (centre_actions starts and ends it)."""
        return self.consultation.current

    def consult_state(self, leg: Leg) -> None:
        """The consulted party answered, or left (or was cancelled)."""
        consult = self.consult
        if consult is None:
            return
        if leg.confirmed and not consult.answered:
            self._run(self.consultation.consulted_answered())
        elif leg.disconnected:
            self._run(self.consultation.consulted_gone())

    def perform(self, actions: list[Action[Leg]]) -> None:
        """Perform what a flow of this call decided (centre_actions' requests)."""
        self._run(actions)

    def emit(self, command: CallCommand) -> None:
        self._emit(command)

    def submit(self, command: CentreCommand) -> None:
        """Run a call-centre command a flow of this call decided (centre_actions' requests)."""
        self._submit(command)

    def _emit(self, command: CallCommand) -> None:
        if command.cause is None and self.cause is not None:
            command = replace(command, cause=self.cause)
        super()._emit(command)
