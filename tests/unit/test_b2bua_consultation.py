"""An attended transfer's consultation (application.b2bua.consultation) with
fake legs: the caller held while the agent consults, then completed,
cancelled, or ended by the consulted party."""

from __future__ import annotations

from uuid import uuid4

from application.b2bua import actions as act
from application.b2bua.consultation import Consultation
from application.call_control import AuditLink
from domain.call import TransferKind
from domain.call_commands import HoldCall, ResumeCall, TransferCall
from tests.unit.b2bua_fakes import Clock, FakeLeg

CALL = uuid4()


def consulting() -> tuple[Consultation[FakeLeg], FakeLeg, list[act.Action[FakeLeg]]]:
    consultation: Consultation[FakeLeg] = Consultation(CALL, Clock())
    leg = FakeLeg("consulted")
    return consultation, leg, consultation.start("number:2002", leg)


def test_consulting_holds_the_caller() -> None:
    consultation, leg, actions = consulting()
    assert isinstance(actions[0], act.Emit)
    assert isinstance(actions[0].command, HoldCall)
    assert actions[1:] == [act.Bridge()]
    assert consultation.current is not None
    assert (consultation.current.leg, consultation.current.answered) == (leg, False)


def test_completing_an_answered_consultation_records_an_attended_transfer() -> None:
    consultation, leg, _ = consulting()
    assert consultation.consulted_answered() == [act.Bridge()]
    assert consultation.consulted_answered() == []  # once
    consulted, records = consultation.complete()
    assert consulted is leg
    kinds = [type(r.command) for r in records if isinstance(r, act.Emit)]
    assert kinds == [TransferCall, ResumeCall]
    transfer = records[0]
    assert isinstance(transfer, act.Emit)
    assert isinstance(transfer.command, TransferCall)
    assert (transfer.command.kind, transfer.command.target) == (
        TransferKind.ATTENDED, "number:2002")
    assert consultation.current is None


def test_a_cancelled_consultation_resumes_the_caller_for_the_command_that_cancelled() -> None:
    consultation, leg, _ = consulting()
    cancel = AuditLink(CALL, "control-cancel", "req-9")
    assert consultation.cancel(cancel) == [act.HangUp(leg)]
    actions = consultation.consulted_gone()
    resume = actions[0]
    assert isinstance(resume, act.Emit)
    assert isinstance(resume.command, ResumeCall)
    assert resume.command.cause == cancel
    assert actions[1:] == [act.Bridge()]
    assert consultation.current is None


def test_the_consulted_party_hanging_up_resumes_the_caller() -> None:
    consultation, _, _ = consulting()
    consultation.consulted_answered()
    [resume, bridge] = consultation.consulted_gone()
    assert isinstance(resume, act.Emit)
    assert isinstance(resume.command, ResumeCall)
    assert resume.command.cause is None
    assert bridge == act.Bridge()
    assert consultation.consulted_gone() == []


def test_the_call_ending_drops_the_consultation() -> None:
    consultation, leg, _ = consulting()
    assert consultation.drop() is leg
    assert consultation.drop() is None
