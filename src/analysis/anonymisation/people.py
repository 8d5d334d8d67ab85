"""Person names in text values.

No rule finds every name in free text: names are words like any other. The guard finds
the common cases where something marks a word pair as a name:

* an honorific before a capitalised word: ``Mr Smith``, ``Dr. J. Jones``, ``Mrs Jane Doe``;
* a common given name (the list below) before a capitalised word: ``Jane Doe``,
  ``saw Priya Patel today``, or after it with a comma: ``Doe, Jane``;
* a capitalised pair after a word that introduces a person: ``call Ana Ruiz``,
  ``daughter Kim Lee``, ``seen by Tom Hart``, ``patient Wendy Moss``;
* for a patient id, any value that is a capitalised ``Given Family`` pair (``Jane Doe``,
  ``Doe, Jane``, ``J. Doe``): a pseudonym never looks like one.

What it cannot catch (docs/anonymisation.md): a name without such a mark (``rang Doe``),
a given name not in the list and without context, names written in lower case, and
names in scripts other than Latin.

The given names are a hand-picked list of about 400 common given names in English-speaking
countries, with frequent Spanish, Indian, Arabic and East Asian ones; names that are also
ordinary English words or places (Will, May, Grace, Hope, Mark, Jordan, Florence) are left
out, so that ``Will Continue`` or ``Florence Hospital`` are not taken for people.
A capitalised word that names a thing (Hospital, Clinic, Disease, Scale, ...) is never
taken for a family name.

Examples
--------
>>> from analysis.anonymisation.people import find_names, looks_like_person_name
>>> find_names("call Jane Doe on 07700 900123; seen by Dr. Patel")
['Jane Doe', 'Dr. Patel']
>>> find_names("Bipolar Depression, treated at St Mary Hospital with ketamine")
[]
>>> looks_like_person_name("Doe, Jane"), looks_like_person_name("Site A")
(True, False)
"""

from __future__ import annotations

import re

__all__ = ["GIVEN_NAMES", "find_names", "looks_like_person_name"]

GIVEN_NAMES: frozenset[str] = frozenset("""
    aaron abby abdul abigail adam adrian ahmed aidan aisha alan albert alex alexander alexandra alexis alfie ali
    alice alicia alison amanda amber amelia amir amit amy ana andrea andrew andy angela anita ann anna anne annie
    anthony antonio anya arjun arthur ashley ashok barbara barry ben benjamin beth bethany betty beverly brandon
    brenda brian bridget bruce bryan caitlin cameron carl carla carlos carmen carol caroline catherine charles
    charlie chloe chris christina christine christopher claire clara colin connor craig cynthia daniel danielle
    david deborah debra deepak denise dennis derek diana diane donald donna dorothy douglas dylan edward eileen
    elaine eleanor elena eli elijah elizabeth ella ellie emily emma eric erica erin ethan eugene evelyn fatima
    fiona francesca francis gabriel gail gareth gary gavin gemma geoffrey george gerald gillian gloria gordon
    graham greg gregory hamza hannah harold harry harvey heather helen henry holly howard hugh ian imran irene
    isaac isabel isabella isabelle jacob jake james jamie jane janet janice jasmine jason jean jeffrey jennifer
    jeremy jessica jill joan joanna joanne joe joel john johnny jonathan jose joseph josephine joshua joyce juan
    judith judy julia julie justin karen kate katherine kathleen kathryn katie kavya keith kelly kenneth kevin
    kim kimberly kirsty kyle laura lauren lawrence leah lee leo leon liam linda lisa liz lois louis louise lucas
    lucy luis luke lydia lynn madeleine maria marie marilyn martha martin mary matthew maureen megan melissa
    michael michelle mohammed mohammad muhammad nancy naomi natalie nathan neil nicholas nicola nicole nigel
    noah norma oliver olivia omar oscar owen pamela patricia patrick paul paula peter philip phillip pooja
    priya rachel rahul ralph raj rajesh ramesh raymond rebecca richard rita robert robin roger ronald rosa
    rosemary ruth ryan sally samantha samuel sandra sara sarah scott sean sharon shirley simon sofia sophia
    sophie stephanie stephen steven stuart susan suresh tanya teresa terry theresa thomas timothy tina tom
    tony tracy trevor tyler valerie vanessa vera veronica vicky vikram vincent walter wayne wendy william
    yasmin yusuf zachary zara zoe wei ming hui yan jun hiroshi yuki kenji akira mei ling chen sanjay anil
    sunita lakshmi meera neha rohan aarav ananya ishaan diya hussein khalid layla mariam noor rania sami tariq
    youssef zainab alejandro carlota diego javier jorge lucia manuel miguel pablo pedro raul sergio ines
    joao rafael thiago camila gabriela mateo santiago valentina francois pierre jacques marc nicolas sebastien
    hans klaus jurgen stefan wolfgang anja katrin sabine ulrike giovanni giuseppe marco luca paolo giulia
    chiara sven lars erik ingrid astrid bjorn olga irina natasha sergei dmitri ivan katya anton
    ahmad bilal faisal hassan ibrahim kareem nadia salma
""".split())

_HONORIFIC = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Rev|Revd)"
_CAP = r"[A-Z][a-z]+(?:['\u2019-][A-Z]?[a-z]+)*"            # Doe, O'Brien, Smith-Jones
_INITIAL = r"(?:[A-Z]\.?\s+)"
_NOT_SURNAME = frozenset("""
    hospital hospitals clinic clinics centre center infirmary institute university college school trust foundation
    medical health healthcare street road avenue lane park house disease syndrome disorder scale inventory
    questionnaire test score wort unit ward wing building campus site group study trial research memorial general
    regional county royal day week month year monday tuesday wednesday thursday friday saturday sunday january
    february march april may june july august september october november december service services team
    practice surgery and or of the in on at for with
""".split())
_CONTEXT = (r"(?i:\b(?:call|called|calling|contact|contacted|ring|rang|phone|phoned|text|texted|email|emailed|"
            r"named|name is|spoke to|spoke with|seen by|referred by|son|daughter|wife|husband|mother|father|"
            r"brother|sister|partner|spouse|friend|carer|caregiver|guardian|neighbour|neighbor|patient|pt)\b)")

_HONORIFIC_NAME = re.compile(rf"\b{_HONORIFIC}\.?\s+{_INITIAL}?{_CAP}(?:\s+{_CAP})?")
_PAIR = re.compile(rf"(?=\b({_CAP})\s+{_INITIAL}?({_CAP})\b)")
_UPPER_PAIR = re.compile(r"(?=\b([A-Z]{3,})\s+([A-Z][A-Z'-]+)\b)")
_SURNAME_FIRST = re.compile(rf"\b({_CAP}),\s+({_CAP})\b")
_CONTEXT_PAIR = re.compile(rf"{_CONTEXT}\s+({_CAP}\s+{_INITIAL}?{_CAP})\b")
_WHOLE_NAME = re.compile(
    rf"^\s*(?:{_HONORIFIC}\.?\s+)?(?:{_CAP}|[A-Z]\.?)\s+{_INITIAL}?{_CAP}\s*$"
    rf"|^\s*{_CAP},\s+(?:{_CAP}|[A-Z]\.?)(?:\s+{_INITIAL}?)?\s*$"
    rf"|^\s*[A-Z]{{2,}},?\s+[A-Z][a-z]+\s*$|^\s*[A-Z][a-z]+\s+[A-Z]{{2,}}\s*$"
)


def find_names(text: str) -> list[str]:
    """Person names found in ``text`` by the marks described in the module docstring.

    Examples
    --------
    >>> from analysis.anonymisation.people import find_names
    >>> find_names("Jane Doe <jane@example.com>"), find_names("daughter Kim Lee will call")
    (['Jane Doe'], ['Kim Lee'])
    """
    found: list[str] = []
    for m in _HONORIFIC_NAME.finditer(text):
        found.append(m.group(0))
    for m in _PAIR.finditer(text):
        given, family = m.group(1), m.group(2)
        if given.lower() in GIVEN_NAMES and family.lower() not in _NOT_SURNAME:
            found.append(text[m.start(1):m.end(2)])
    for m in _UPPER_PAIR.finditer(text):
        given, family = m.group(1), m.group(2)
        if given.lower() in GIVEN_NAMES and family.lower() not in _NOT_SURNAME:
            found.append(text[m.start(1):m.end(2)])
    for m in _SURNAME_FIRST.finditer(text):
        if m.group(2).lower() in GIVEN_NAMES and m.group(1).lower() not in _NOT_SURNAME:
            found.append(m.group(0))
    for m in _CONTEXT_PAIR.finditer(text):
        first, *_, last = m.group(1).split()
        if first.lower() not in _NOT_SURNAME and last.lower() not in _NOT_SURNAME:
            found.append(m.group(1))
    # one finding per place: drop a name inside another one found
    found = sorted(set(found), key=lambda s: (text.find(s), -len(s)))
    out: list[str] = []
    for name in found:
        if not any(name in kept for kept in out):
            out.append(name)
    return out


def looks_like_person_name(value: str) -> bool:
    """Whether a whole value is written like a person's name: ``Jane Doe``, ``Doe, Jane``,
    ``J. Doe``, ``Mr John Smith``, ``DOE, Jane`` (used for patient ids, which are pseudonyms).

    Examples
    --------
    >>> from analysis.anonymisation.people import looks_like_person_name
    >>> [looks_like_person_name(v) for v in ("Jane Doe", "J. Doe", "P0001", "site_A", "Site A", "Bipolar Disorder")]
    [True, True, False, False, False, False]
    """
    if not _WHOLE_NAME.match(value):
        return False
    words = [w.strip(".,").lower() for w in value.split()]
    return not any(w in _NOT_SURNAME for w in words)
