"""A call-centre call's lane on its ``Session``: the front (``centre_front``:
IVR, queue, dialling) and the agents: offers rung on agents' devices, the
talk, recording, supervisors, transfers.

``CentreCall`` is composed, not derived: it holds the call's flows
(``application.b2bua``: front, offers, supervision, consultation, transfers,
control), performs their actions, and attaches itself to the session as its
``CallLane``, taking over the plain steps it changes.

Call-centre commands go through the ``CentreLink`` thread and their outcome
comes back here: an offer the router timed out a moment before the agent's
200 OK is refused, and the agent is hung up while the caller keeps waiting.
Supervision and transfer requests are handled in ``centre_actions.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.media.recorder import CallRecording
from adapters.sip.pjsua.legs import Leg, state_fact
from adapters.sip.pjsua.mixer import Mixer, Port, conversation, port
from adapters.sip.sessions.centre_front import CentreContext, CentreFront, Stage
from adapters.sip.sessions.session import Session, TimerHandle
from adapters.sip.store.centre_link import Outcome
from application.b2bua import front as flow
from application.b2bua.actions import Action
from application.b2bua.centre_commands import (
    FOLLOWED,
    AcceptOffer,
    CentreCommand,
    CentreDone,
    Submit,
    TransferWaiting,
)
from application.b2bua.consultation import Consult, Consultation
from application.b2bua.control import CallControl
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
from domain.addressing import Target
from domain.call import HangupSide
from domain.call_commands import AnswerCall, AttachRecording, CallCommand, EndCall
from domain.queue import Queue

log = logging.getLogger(__name__)

RECORDING_CHECKS = 100  # x 50 ms: how long a closed recording may take to be completed


class CentreCall:
    def __init__(self, session: Session, centre: CentreContext) -> None:
        self.session = session
        self.centre = centre
        self.call_id = session.call_id
        self.front = CentreFront(session, centre, self.run)
        # The rings of the router's offers and the agent who took the call: the flow's.
        self.offers: Offers[Leg] = Offers(self.front.visit, centre.directory.agent_key, now)
        self._offer_timers: dict[UUID, TimerHandle] = {}
        self.supervision: Supervision[Leg] = Supervision(self.call_id)
        self.consultation: Consultation[Leg] = Consultation(self.call_id)
        self.recording: CallRecording | None = None
        self.mixer = Mixer()
        # The call-control request being handled (centre_actions.handle): what is
        # emitted meanwhile carries out that API command (see application.call_control).
        self.cause: AuditLink | None = None
        # Transfer requests (centre_actions.transfer), decided by the flow.
        self.transfers: Transfers[Leg] = Transfers(session.flow, self.front.visit,
                                                   self.consultation, centre.directory.queue,
                                                   centre.resolve_number, now)
        self.control: CallControl[Leg] = CallControl(self.transfers, self.supervision,
                                                     self.consultation, centre.free_legs)
        session.lane = self

    def start(self, destination: Target) -> None:
        """Answer the caller's leg ourselves (media only) and go to ``destination``."""
        self.front.start(destination)

    # -- the call-centre flows' actions, performed ------------------------------------------

    def run(self, actions: Sequence[Any]) -> None:
        """Perform the actions of the call-centre flows (the front's, the offers')."""
        for action in actions:
            self._perform(action)

    def _perform(self, action: Any) -> None:
        match action:
            case PlaceAgent(agent_id=agent_id, device_uri=uri, deadline=deadline):
                self._place_agent(agent_id, uri, deadline)
            case StartOfferTimer(agent_id=agent_id, seconds=seconds):
                self._offer_timers[agent_id] = self.session.ctx.call_later(
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
            case Submit(command=command):
                self.submit(command)
            case flow.WithdrawRings():
                self.run(self.offers.withdraw(None))
            case flow.Talk():
                self._talk(now())
            case _:
                if not self.front.perform(action):  # the front's, or the call's own (Emit)
                    self.session.run([action])

    def submit(self, command: CentreCommand) -> None:
        """Run ``command`` on the call-centre lane; the outcome of those the flows
        follow back to them. What the outcome leads to carries the call-control
        request the command was submitted for, if any (a transfer's enqueue: the
        call's ``Queued`` then emitted is that request's)."""
        cause = self.cause

        def done(outcome: Outcome[Any]) -> None:
            before, self.cause = self.cause, cause
            try:
                self._centre_done(CentreDone(command, outcome.ok, outcome.value,
                                             _error(outcome)))
            finally:
                self.cause = before
        follows = isinstance(command, FOLLOWED)
        self.centre.link.submit(command.what(), command.run, done if follows else None)

    def _centre_done(self, done: CentreDone) -> None:
        ended = self.session.phase is Phase.ENDED
        if isinstance(done.command, AcceptOffer):  # heard even after the call's end
            self.run(self.offers.accepted(done, ended))
        elif isinstance(done.command, TransferWaiting):
            self.transfers.move_done(done)
        elif not ended:  # nothing else is heard after the call's end
            self.run(self.front.visit.centre_done(done))

    # -- offers ----------------------------------------------------------------------------

    def offer_changed(self, change: OfferChange) -> None:
        if change.kind == "reserved":
            self.run(self.front.visit.offered())  # the queue has the call: Queued first
            self.run(self.offers.reserved(
                OfferReserved(change.agent_id, change.device_uri, change.deadline)))
        elif change.kind in ("missed", "cancelled"):
            self.run(self.offers.stop_ring(change.agent_id))

    def _place_agent(self, agent_id: UUID, uri: str, deadline: datetime | None) -> None:
        leg = self.session.ctx.new_leg(LegRole.AGENT)
        leg.listener = self.session
        if not leg.place(uri):
            leg.detach()
            self.run(self.offers.ring_failed(RingFailed(agent_id, uri)))
            return
        self.run(self.offers.ring_placed(RingPlaced(agent_id, leg, uri, deadline)))

    def _offer_timed_out(self, agent_id: UUID) -> None:
        self._offer_timers.pop(agent_id, None)
        self.run(self.offers.stop_ring(agent_id))

    def _connect_agent(self, leg: Leg, at: datetime) -> None:
        self.session.b = leg
        self._talk(at)
        if leg.disconnected:  # the agent hung up while the answer was being stored
            self.session.end_answered(HangupSide.CALLEE, "normal_clearing")

    def _talk(self, at: datetime) -> None:
        """The caller and the person on ``b`` talk: answered, bridged, maybe recorded."""
        front = self.front
        if not front.ever_answered:
            self.session.emit(AnswerCall(self.call_id, at))
        front.ever_answered = True
        self.session.phase, front.stage = Phase.ANSWERED, Stage.TALKING
        front.cancel_stage_timer()
        front.audio.silence()
        if front.queue is not None and front.queue.record_calls and self.recording is None \
                and self.centre.recordings is not None:
            self.recording = self.centre.recordings.start(self.call_id)
            log.info("call %s: recording to %s", self.call_id, self.recording.path)
        self.session.bridge()
        self.session.start_sampling()

    # -- transfers (requests: centre_actions.py) -------------------------------------------

    def release_agent(self) -> None:
        """The agent leaves the call (a transfer): hang their leg up, start wrap-up."""
        leg, self.session.b = self.session.b, None
        if leg is not None:
            leg.listener = None
            leg.end()
        self.run(self.offers.release())

    def requeue(self, queue_id: UUID, came_from: UUID | None) -> None:
        """Back to waiting, in another queue (the agent transferred the caller)."""
        self.session.phase = Phase.ROUTING  # nobody talks to the caller until the next agent
        self.mixer.clear()
        self.front.enter_queue(queue_id, transferred_from=came_from)

    def dial_after_transfer(self, uri: str) -> None:
        self.session.phase = Phase.ROUTING
        self.mixer.clear()
        self.front.dial(uri)

    def take_consulted(self, leg: Leg) -> None:
        """The consulted party becomes the other party: its state reaches the plain steps."""
        self.session.b = leg

    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None:
        """As the front does; what a move an API command asked for makes carries it out."""
        moved_by, self.transfers.moved_by = self.transfers.moved_by, None
        self.cause = moved_by if isinstance(event, Queue.CallTransferredOut) else None
        try:
            self.front.queue_left(event)
        finally:
            self.cause = None

    # -- the session's steps this lane changes (CallLane) ----------------------------------

    def leg_state(self, leg: Leg) -> None:
        session = self.session
        if session.phase is Phase.ENDED:
            return
        ring = self.offers.ring_of(leg)
        watch = self.supervision.on_leg(leg)
        fact = state_fact(leg)
        if ring is not None:
            if isinstance(fact, Ringing | Answered | Gone):
                self.run(self.offers.ring_state(ring, fact))
        elif watch is not None:
            self.watch_state(watch)
        elif self.consult is not None and leg is self.consult.leg:
            self.consult_state(leg)
        elif session.phase is Phase.ANSWERED:
            session.plain_leg_state(leg)
        elif leg is session.a and leg.disconnected:
            self.front.caller_left()
        elif leg is session.b and self.front.stage is Stage.DIALLING:
            self.front.dialled_state(leg)

    def key_pressed(self, leg: Leg, digit: str) -> None:
        self.run(self.front.visit.key_pressed(leg, digit))

    def end_now(self, cause: str) -> None:
        if self.session.phase is not Phase.ENDED:
            self.run(self.front.visit.shutdown(cause))

    def finish(self, end: EndCall, answered: bool) -> None:
        self.front.close()
        self.run(self.offers.drop_all())
        recording, self.recording = self.recording, None
        self.session.plain_finish(end, answered)
        self.mixer.forget()
        if recording is not None:
            recording.close()
            self._attach(recording, RECORDING_CHECKS)

    def _attach(self, recording: CallRecording, checks: int) -> None:
        """RecordingAvailable once the file is complete (it is finished on the
        bridge's clock, shortly after the recorder is closed)."""
        result = recording.result()
        if result is not None:
            self.session.emit(AttachRecording(self.call_id, now(), *result))
        elif checks > 0:
            self.session.ctx.call_later(0.05, lambda: self._attach(recording, checks - 1))
        else:
            log.error("call %s: recording %s never completed", self.call_id, recording.path)

    def end_all_but(self, keep: Leg | None) -> None:
        extra = self.supervision.drop_all()
        consulted = self.consultation.drop()
        if consulted is not None:
            extra.append(consulted)
        for leg in extra:
            leg.listener = None
            leg.end()
        self.session.plain_end_all_but(keep)

    def transfer_answered(self, transferor: Leg, new: Leg) -> None:  # noqa: ARG002 - CallLane
        # A REFER from the agent (whose place ``new`` took): the agent leaves,
        # their wrap-up starts.
        if new is self.session.b:
            self.run(self.offers.release())
        self.session.plain_transfer_answered(new)

    def emitted(self, command: CallCommand) -> CallCommand:
        """What is emitted while a call-control request is handled carries it out."""
        if command.cause is None and self.cause is not None:
            return replace(command, cause=self.cause)
        return command

    # -- audio -----------------------------------------------------------------------------

    def bridge(self) -> None:
        if self.session.phase is not Phase.ANSWERED:
            self.front.audio.refresh()
            return
        waiting = self._waiting_party()
        if waiting is not None:
            self.session.play_hold_music(waiting)
        self.mixer.apply(self._routes())

    def unbridge(self) -> None:
        self.mixer.apply(self._routes())

    def refresh_audio(self) -> None:
        self.bridge()

    def _waiting_party(self) -> Leg | None:
        if self.consult is not None:
            return self.session.a
        return self.session.flow.waiting_party()

    def _routes(self) -> set[tuple[Port, Port]]:
        caller, agent = self.session.flow.parties()
        one = port(caller.audio()) if caller is not None else None
        two = port(agent.audio()) if agent is not None else None
        supervisors = {p: w.mode for w in self.supervision.joined()
                       if (p := port(w.leg.audio())) is not None}
        recorder = port(self.recording.sink) if self.recording is not None else None
        talking = self.session.held_by is None and self.consult is None \
            and self._waiting_party() is None
        routes = conversation(one, two, supervisors=supervisors, recorder=recorder,
                              talking=talking)
        if self.consult is not None and self.consult.answered and two is not None:
            third = port(self.consult.leg.audio())
            if third is not None:
                routes |= {(two, third), (third, two)}
        return routes

    # -- supervisors and consultations (requests: centre_actions.py) -----------------------

    def watch_state(self, watch: Watch[Leg]) -> None:
        """A supervisor's leg changed state: joined (answered) or gone."""
        fact = state_fact(watch.leg)
        if isinstance(fact, Answered):
            # Joined: the request that called them is the cause (or the one being handled).
            self.perform(self.supervision.device_answered(watch, self.cause))
        elif isinstance(fact, Gone):
            self.perform(self.supervision.device_gone(watch))

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
            self.perform(self.consultation.consulted_answered())
        elif leg.disconnected:
            self.perform(self.consultation.consulted_gone())

    def perform(self, actions: list[Action[Leg]]) -> None:
        """Perform what a flow of this call decided (centre_actions' requests)."""
        self.session.run(actions)

    def emit(self, command: CallCommand) -> None:
        self.session.emit(command)


def _error(outcome: Outcome[Any]) -> str | None:
    return None if outcome.ok else str(outcome.error)
