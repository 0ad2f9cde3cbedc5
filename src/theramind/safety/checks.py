"""Checks on counselor replies in normal turns: no medication advice, no diagnosis, stay in role."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from theramind.safety.screen import normalize_text
from theramind.strict import Strict

ViolationKind = Literal[
    "medication_advice", "diagnosis_statement", "role_break", "prompt_leak", "too_long"
]
MAX_CHECKED_CHARS = 20_000
"""A reply longer than this is not scanned sentence by sentence: it is a violation in itself
(no reply that long may reach a patient), so the checks stay fast on any input."""

MEDICATION_REDIRECT = (
    "That's an important question for your doctor or prescriber, who knows your full history."
)
SAFE_REFLECTION = (
    "I hear how much this matters to you. Can you tell me a little more about what it has been "
    "like for you?"
)


class Violation(Strict):
    """One problem found in a counselor reply."""

    kind: ViolationKind
    evidence: str = Field(max_length=160, description="The offending words.")


_DRUGS = (
    r"(?:sertraline|fluoxetine|citalopram|escitalopram|paroxetine|fluvoxamine|venlafaxine|"
    r"desvenlafaxine|duloxetine|bupropion|mirtazapine|trazodone|amitriptyline|nortriptyline|"
    r"vortioxetine|agomelatine|lithium|quetiapine|olanzapine|risperidone|aripiprazole|"
    r"lamotrigine|valproate|carbamazepine|diazepam|lorazepam|alprazolam|clonazepam|zolpidem|"
    r"zopiclone|melatonin|propranolol|pregabalin|gabapentin|hydroxyzine|buspirone|"
    r"methylphenidate|atomoxetine|ketamine|esketamine|prozac|zoloft|lexapro|celexa|paxil|"
    r"effexor|cymbalta|wellbutrin|remeron|xanax|valium|ativan|klonopin|ambien|seroquel|"
    r"abilify|lamictal|adderall|ritalin|st john's wort|ssris?|snris?|benzodiazepines?|benzos?|"
    r"antidepressants?|antipsychotics?|mood stabili[sz]ers?|sleeping pills|sedatives?|"
    r"anti anxiety (?:meds|medication|pills))"
)
_MEDS = (
    r"(?:your |the |some |a |an |any |more |less |extra |half )?"
    rf"(?:(?:meds|medications?|medicine|pills|tablets|dose|dosage)\b|{_DRUGS})"
    r"(?! as (?:prescribed|directed|your doctor))"
)
_LEAD = (
    r"(?:you (?:should|could|might|must|need to|ought to|may want to|might want to) (?:try )?|"
    r"i (?:would )?(?:recommend|suggest|advise)(?: that you| you)? |try |consider |"
    r"it might help to |why not |make sure (?:you |to )|it is (?:best|better|fine|okay|safe) to |"
    r"have you (?:thought about|considered) |maybe |please |just )"
)
_VERB = (
    r"(?:take|taking|start|starting|stop|stopping|increase|increasing|decrease|decreasing|"
    r"lower|lowering|raise|raising|double|doubling|halve|halving|cut down on|cutting down on|"
    r"cut back on|skip|skipping|come off|coming off|get off|switch to|switching to|wean off|"
    r"go off|quit|up|reduce|reducing)(?: (?:taking|using))?"
)
_MEDICATION = (
    rf"\b{_LEAD}{_VERB} {_MEDS}|(?:^|[.!?]\s+)(?:just |maybe |please )?{_VERB} {_MEDS}"
    rf"|\b\d+(?:\.\d+)? ?(?:mg|milligrams?|mcg)\b"
    rf"|\b{_DRUGS} (?:would|could|might|will|should) (?:help|work|be good)"
    r"|\bdoubl\w* (?:up )?(?:your|the) (?:dose|meds|pills)"
)
_DISORDER = (
    r"(?:a |an |some |mild |moderate |severe |major |clinical |chronic |classic )*"
    r"(?:depression|depressive disorder|major depressive|bipolar|adhd|ocd|c? ?ptsd|bpd|"
    r"borderline|schizophreni\w*|psychosis|psychotic|autis\w*|anorexi\w*|bulimi\w*|"
    r"dysthymia|cyclothymi\w*|narcissis\w*|clinically depressed|obsessive compulsive|manic|"
    r"(?:generali[sz]ed |social )?anxiety disorder|generali[sz]ed anxiety|\w+ disorder|"
    r"a diagnosis)\b"
)
_DIAGNOSIS = (
    r"(?<!said )(?<!mentioned )(?<!told me )(?<!do you think )(?<!diagnosed )(?<!if )"
    r"\byou (?:(?:probably|likely|clearly|definitely|certainly|might|may|could) )?"
    r"(?:have|have got|are suffering from|suffer from|are showing (?:signs|symptoms) of|"
    rf"(?:meet|fit) (?:the )?criteria for|qualify for a diagnosis of) {_DISORDER}"
    r"|\b(?:this|that|it|what you are describing|these symptoms) (?:sounds|seems|looks|is) "
    rf"(?:a lot |very much )?like {_DISORDER}"
    rf"|\b(?:classic|textbook) (?:signs?|symptoms?|case) of {_DISORDER}"
    r"|\bmy diagnosis (?:is|would be)\b|\bi (?:would )?diagnose you\b"
    r"|(?<!if )\byou are (?:clearly |probably |definitely |obviously )?(?:bipolar|schizophrenic|"
    r"borderline|autistic|psychotic|anorexic|bulimic|clinically depressed|a narcissist|manic)\b"
)
_ROLE_BREAK = (
    r"\bas an ai\b|\bas a (?:large )?language model\b|\bi am (?:just |only )?(?:an ai|a language "
    r"model|a chatbot|a bot|a computer program)\b|\bi am not (?:a real person|human)\b|"
    r"\bmy training data\b|\bknowledge cut ?off\b|\bopenai\b|\bchatgpt\b|"
    r"(?:^|\n|[.!?])[ \t]*(?:patient|client|user|human|assistant|counsel?lor|therapist|ai)[ \t]*:"
)
_PROMPT_LEAK = (
    r"</?\s*(?:formulation|memories|memory|system|instructions?|context|profile|strategy|"
    r"plan|risk|crisis_protocol|patient_record|session_summary|recalled|therapy)\s*>|"
    r"\bsystem (?:prompt|message)\b|\bdeveloper (?:prompt|message)\b|"
    r"\bmy (?:instructions|prompt|system prompt|guidelines) (?:say|tell|are|state)\b|"
    r"\bi (?:was|am|have been) (?:instructed|programmed|prompted) to\b|"
    r"\b(?:according to|based on) (?:my|the|your) (?:formulation|case formulation|"
    r"instructions|system prompt|treatment notes|hidden notes)\b|"
    r"\bmy (?:chosen|selected) strategy\b|"
    r"(?:^|\n)[ \t]*(?:strategy|formulation|reasoning|rationale|risk_level|phase)[ \t]*[:=]"
)
_REDIRECT = re.compile(
    r"\b(?:talk|speak|check|ask|discuss|consult|raise)\w* (?:it |this |that )?(?:to |with )?"
    r"(?:your|a|the) (?:doctor|gp|prescriber|psychiatrist|pharmacist|physician|nurse|"
    r"care team|medical team)[^.!?]*"
)
_CHECKS: tuple[tuple[ViolationKind, re.Pattern[str]], ...] = (
    ("medication_advice", re.compile(_MEDICATION)),
    ("diagnosis_statement", re.compile(_DIAGNOSIS)),
    ("role_break", re.compile(_ROLE_BREAK)),
    ("prompt_leak", re.compile(_PROMPT_LEAK)),
)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n|$)")
_SPEAKER_PREFIX = re.compile(r"^\s*(?:counsel?lor|therapist|assistant|ai)[ \t]*:\s*", re.IGNORECASE)
_OTHER_SPEAKER = re.compile(
    r"(?:^|(?<=[\n.!?]))[ \t]*(?:patient|client|user|human)[ \t]*:", re.IGNORECASE
)
_LEADING_CONJUNCTION = re.compile(r"^(?:but|and|so|however|also),?\s+(\w)", re.IGNORECASE)


def _violations(text: str) -> list[Violation]:
    if len(text) > MAX_CHECKED_CHARS:
        return [Violation(kind="too_long", evidence=f"{len(text)} characters")]
    raw = text.lower()
    norm = _REDIRECT.sub(" ", normalize_text(text))
    found = []
    for kind, pattern in _CHECKS:
        hay = raw if kind in ("role_break", "prompt_leak") else norm
        m = pattern.search(hay)
        if m:
            found.append(Violation(kind=kind, evidence=m.group(0).strip(" \n.!?")[:160] or kind))
    return found


def check_reply(text: str) -> list[Violation]:
    """Return the rule violations in a counselor reply for a normal turn."""
    return _violations(text)


def _meaningful(text: str) -> bool:
    return len(re.findall(r"[A-Za-z']+", text)) >= 3


def sanitize_reply(text: str) -> tuple[str, list[Violation]]:
    """Drop offending sentences; fall back to a safe reflection when too little remains."""
    violations = _violations(text)
    if not violations:
        return text, []
    if any(v.kind == "too_long" for v in violations):
        return SAFE_REFLECTION, violations
    body = _SPEAKER_PREFIX.sub("", _OTHER_SPEAKER.split(text, maxsplit=1)[0])
    kept: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE.findall(body)):
        found = _violations(sentence) if sentence else []
        if not found:
            kept += [sentence] if sentence else []
        elif any(v.kind == "medication_advice" for v in found) and MEDICATION_REDIRECT not in kept:
            kept.append(MEDICATION_REDIRECT)
    if any(v.kind == "medication_advice" for v in violations) and MEDICATION_REDIRECT not in kept:
        kept.append(MEDICATION_REDIRECT)
    clean = _LEADING_CONJUNCTION.sub(lambda m: m.group(1).upper(), " ".join(kept).strip())
    if not _meaningful(clean):
        clean = SAFE_REFLECTION
    return clean, violations
