# ruff: noqa: E501, RUF001 - a table of regular expressions, some in scripts with lookalike punctuation
"""The cues of instruction-like text aimed at software or staff, by kind and language.

Patterns match *normalised* text (see ``_normalize.fold``): lower case, accents removed, ASCII
letters where the original imitated them. A space in a pattern matches any run of spaces and
light punctuation. Kinds and their weights (a document is flagged at a total of 1.0):

- ``override`` (1.0): ignore / disregard / forget earlier instructions, prompts or rules;
- ``role`` (1.0): a role or chat-markup claim ("SYSTEM:", "<|im_start|>", "you are now ...");
- ``addressee`` (1.0): text addressed to an AI or automated system ("note to the AI agent");
- ``no_review`` (1.0): asks to skip people ("no human review needed", "do not flag this");
- ``tool_call`` (1.0): a tool or function call written out (JSON with a tool name and arguments);
- ``leak`` (1.0): asks to reveal a prompt, credentials or every patient's records;
- ``output`` (0.5): dictates the reader's answer ("just print", "reply only with");
- ``directive`` (0.5): tells the reader to approve, classify, or change records;
- ``exfiltration`` (0.6): send the full chart or record to somewhere;
- ``pressure`` (0.3): manipulative urgency ("you may not deviate", "this is a test").

Clinical instructions to patients and staff ("take two tablets", "please fax results to",
"ignore the previous lab value, it was hemolysed", "disregard the previous dosing instructions")
are deliberately outside these patterns: they name no software, prompt or rule set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GAP = r"[\s,;:'\"*_\-–—.<>]+"
_COMPACT_GAP = r"[\s,;:'\"*_\-–—.<>]*"
# Words that make "instructions" clinical: the previous *dosing* instructions are a patient's.
_CLINICAL = (
    r"(?!(?:discharge|dosing|dose|medication|med|diet|fasting|prep|wound|care|home|post-?op|"
    r"pre-?op|insulin|warfarin|coumadin|bowel|activity|feeding|exercise|patient|lab|specimen|"
    r"collection|shipping|delivery|mailing|follow-up|follow up|pharmacy|sig)\b)"
)


def _p(pattern: str, gap: str = _GAP) -> re.Pattern[str]:
    """Compile a cue: a space matches a gap, an optional space an optional gap."""
    return re.compile(pattern.replace(" ?", f"(?:{gap})?").replace(" ", gap), re.MULTILINE)


def _compact(pattern: str) -> re.Pattern[str]:
    """The cue for letter-spaced text read without its gaps: gaps and word edges optional."""
    return _p(pattern.replace(r"\b", ""), _COMPACT_GAP)


@dataclass(frozen=True)
class Cue:
    """One pattern of one kind, in one language."""

    kind: str
    language: str
    pattern: re.Pattern[str]
    compact: re.Pattern[str]
    """The same cue for letter-spaced text read without its gaps ("ignoreallprevious...")."""


WEIGHTS: dict[str, float] = {
    "override": 1.0,
    "role": 1.0,
    "addressee": 1.0,
    "no_review": 1.0,
    "tool_call": 1.0,
    "leak": 1.0,
    "output": 0.5,
    "directive": 0.5,
    "exfiltration": 0.6,
    "pressure": 0.3,
    "harmful_task": 1.0,
    "role_hint": 0.5,
    "mentions_ai": 0.5,
    "unscanned": 1.0,
}

LABELS: dict[str, str] = {
    "override": "asks to ignore or replace earlier instructions",
    "role": "claims a system or assistant role, or carries chat markup",
    "addressee": "addresses an AI or automated system",
    "no_review": "asks to skip human review or holds",
    "tool_call": "contains a tool or function call",
    "leak": "asks to reveal prompts, credentials or other patients' data",
    "output": "dictates what the reader should answer",
    "directive": "tells the reader to approve, classify or change records",
    "exfiltration": "asks to send a full chart or record elsewhere",
    "pressure": "manipulative urgency",
    "harmful_task": "asks for content unrelated to care (toxic or offensive text)",
    "role_hint": "a line labelled as a system's or an assistant's turn",
    "mentions_ai": "mentions AI or automated readers",
    "unscanned": "too long to read in full: a person reads it",
}

_INSTR = (
    r"(?:instructions?|instruction set|prompts?|system prompt|rules|guidelines|directives|"
    r"programming|guardrails|context|constraints|training|commands?)"
)
_EARLIER = r"(?:(?:all|any|the|your|of|my|these|those|its) )*(?:previous|prior|above|earlier|preceding|original|initial|former|existing|old|following|system|safety|current|other)?"
_AI = (
    r"(?:ai|a\.i\.|artificial intelligence|assistant|ai assistant|chat ?bot|bot|llm|gpt|"
    r"language model|model|agent|ai agent|copilot|classifier|automated (?:\w++ )?(?:system|agent|"
    r"assistant|software|reviewer|screening|analysis|processing|pipeline|workflow|triage|"
    r"intake|filing|process)|automation|document (?:ai|agent|processor|pipeline)|"
    r"(?:ai|automated|intake|filing|triage|screening) (?:system|bot|software|tool|engine))"
)
_RECORD = r"(?:document|fax|file|page|text|message|note|report|referral|request|record|item|attachment|letter|form)"

_EN = "en"

CUES: tuple[Cue, ...] = tuple(
    Cue(kind, lang, _p(pattern), _compact(pattern))
    for kind, lang, pattern in (
        # --- override ------------------------------------------------------------------------
        (
            "override",
            _EN,
            rf"\b(?:ignore|ignoring|disregard|forget|override|overrule|bypass|discard|drop|"
            rf"skip|abandon|set aside|neglect|nevermind|never mind|supersede|cancel)\b "
            rf"{_EARLIER} ?(?:{_CLINICAL}\w++ ){{0,2}}{_CLINICAL}{_INSTR}\b",
        ),
        (
            "override",
            _EN,
            r"\b(?:new|updated|revised|real|actual|true|hidden|secret) (?:system )?(?:instructions|prompt|directives?|orders)\b ?(?:for|to)? ?(?:the )?(?:ai|assistant|model|agent|system|you)?\W*:",
        ),
        (
            "override",
            _EN,
            r"\b(?:ignore|disregard|forget) (?:all )?(?:of )?(?:the )?(?:above|prior|your|these|my|all) directions\b",
        ),
        (
            "override",
            _EN,
            r"\bstop everything\b|\bnevermind\W+ignore\b|\bignore (?:all|everything) (?:above|before)\b|\bignore (?:everything|all) (?:you were told|else)\b",
        ),
        (
            "override",
            _EN,
            r"\b(?:instead of|rather than) (?:following|obeying) (?:your|the|its) (?:instructions|rules|prompt)\b",
        ),
        (
            "override",
            _EN,
            r"\byour (?:real|new|actual|only) (?:task|job|goal|instructions?|purpose) (?:is|are|now)\b",
        ),
        (
            "override",
            _EN,
            r"\b(?:these|this) (?:instructions?|directives?|orders?) (?:supersede|override|replace|take precedence)",
        ),
        (
            "override",
            "es",
            r"\b(?:ignora|ignore|ignoren|ignorar|olvida|olvide|olviden|omite|omita|descarta|descarte|haz caso omiso de|no hagas caso a|no hagas caso de)\b (?:\w++ ){0,3}(?:instrucciones|indicaciones|reglas|ordenes|directrices|prompt|instruccion)\b(?! (?:de (?:dosis|dosificacion|alta|dieta|ayuno|medicacion)))",
        ),
        (
            "override",
            "fr",
            r"\b(?:ignore[zr]?|ignorez|oublie[zr]?|oubliez|ne tenez pas compte|ne tiens pas compte|fais abstraction|faites abstraction|outrepasse[zr]?)\b (?:\w++ ){0,3}(?:instructions|consignes|regles|directives|prompt|ordres)\b(?! (?:de (?:sortie|dosage|posologie|jeune|regime)))",
        ),
        (
            "override",
            "de",
            r"\b(?:ignorier\w*|vergiss|vergessen sie|missachte\w*|uberschreibe\w*|setze\w* (?:\w++ ){0,3}ausser kraft)\b (?:\w++ ){0,3}(?:anweisungen|instruktionen|regeln|vorgaben|befehle|richtlinien|prompt|anweisung)\b",
        ),
        (
            "override",
            "pt",
            r"\b(?:ignore|ignora|ignorem|ignorar|esqueca|esquece|esquecam|desconsidere|desconsidera|descarte)\b (?:\w++ ){0,3}(?:instrucoes|instrucao|regras|orientacoes|diretrizes|comandos|prompt)\b(?! (?:de (?:alta|dosagem|dieta|jejum|medicacao)))",
        ),
        (
            "override",
            "it",
            r"\b(?:ignora|ignorate|ignori|ignorare|dimentica|dimenticate|dimentichi|trascura|non considerare|non tenere conto)\b (?:\w++ ){0,3}(?:istruzioni|regole|direttive|indicazioni|comandi|prompt)\b(?! (?:di (?:dimissione|dosaggio|dieta|digiuno)))",
        ),
        (
            "override",
            "nl",
            r"\b(?:negeer|vergeet)\b (?:\w++ ){0,3}(?:instructies|regels|aanwijzingen)\b",
        ),
        (
            "override",
            "zh",
            r"(?:忽略|无视|忽视|不要理会|忘记|忘掉|覆盖|绕过)[^。\n]{0,12}(?:指令|指示|说明|规则|提示|命令|设定)",
        ),
        (
            "override",
            "ja",
            r"(?:無視|忘れ)[^。\n]{0,12}(?:指示|命令|ルール|プロンプト)|(?:指示|命令|ルール|プロンプト)[^。\n]{0,8}(?:無視|忘れ)",
        ),
        (
            "override",
            "ru",
            r"\b(?:игнорируй\w*|забудь\w*|проигнорируй\w*)\b (?:\w++ ){0,3}(?:инструкци\w*|правила|указания)",
        ),
        # --- role claims and chat markup ----------------------------------------------------
        ("role", _EN, r"[\"']role[\"'] ?: ?[\"'](?:system|developer|assistant)[\"']"),
        (
            "addressee",
            _EN,
            r"(?:^|>) ?(?:hey |hi |ok |okay |dear )?(?:assistant|ai|a\.i\.|agent|bot|chatbot|model|llm|gpt|"
            r"chatgpt|claude|copilot|gemini) ?[,!]",
        ),
        (
            "role",
            _EN,
            r"(?:^|\]|>|\|) ?(?:#+ ?)?(?:\[(?:system|developer|sys|admin|administrator|root|ai)\] ?:?|(?:system|developer|sys|admin|administrator|root|ai) (?:prompt|message|note|override|instruction|instructions|notice|update|command) ?:|(?:developer|sys|admin|administrator|root|ai) ?:)",
        ),
        (
            "role",
            _EN,
            r"<\|?/?(?:im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\|?>|\[/?inst\]|<</?sys>>|</?s>|<end of (?:session|turn|conversation)>|\bbegin (?:system|admin) (?:prompt|override|message)\b",
        ),
        (
            "role",
            _EN,
            r"(?:^|\s)(?:user|human) ?: .{0,200}\b(?:assistant|ai) ?:|(?:^|\s)assistant ?: ?\[|\n?\buser ?: (?:next|now|thanks|please|could you)",
        ),
        (
            "role",
            _EN,
            r"\b(?:you are now|you're now|from now on,? you(?: are| will|'ll)?|pretend (?:to be|you are)|act as (?:an? |the )?(?:ai|assistant|model|agent|system|administrator|admin|approver|reviewer|supervisor|coordinator|physician reviewer|developer)|you will now act|switch to (?:developer|admin|god|unrestricted) mode|(?:developer|admin|god|dan|jailbreak) mode (?:enabled|on|activated))\b",
        ),
        (
            "role",
            _EN,
            r"\byou are (?:an? |the )?(?:ai|assistant|language model|llm|chatbot|agent|approver|automated)\b(?! (?:scribe|transcription))",
        ),
        (
            "role",
            "es",
            r"\b(?:ahora eres|a partir de ahora(?:,)? (?:eres|seras|actua)|actua como (?:el |un )?(?:aprobador|administrador|asistente|sistema|revisor))",
        ),
        (
            "role",
            "fr",
            r"\b(?:tu es (?:maintenant|desormais)|vous etes (?:maintenant|desormais)|a partir de maintenant(?:,)? (?:tu|vous)|agis(?:sez)? (?:comme|en tant que) (?:l'|le |un )?(?:approbateur|administrateur|assistant|systeme|valideur))",
        ),
        (
            "role",
            "de",
            r"\b(?:du bist (?:jetzt|ab sofort|nun)|sie sind (?:jetzt|ab sofort|nun) (?:der|die|ein)|ab (?:jetzt|sofort)(?:,)? (?:bist du|sind sie)|agiere (?:als|wie)|handle als)\b",
        ),
        (
            "role",
            "pt",
            r"\b(?:voce agora e|agora voce e|a partir de agora(?:,)? voce|aja como (?:o |um )?(?:aprovador|administrador|assistente|sistema|revisor))\b",
        ),
        (
            "role",
            "it",
            r"\b(?:ora sei|adesso sei|d'ora in poi(?:,)? (?:sei|tu)|da ora in poi(?:,)? (?:sei|tu)|agisci come (?:l'|il |un )?(?:approvatore|amministratore|assistente|sistema|revisore))\b",
        ),
        (
            "role",
            "zh",
            r"(?:你现在是|从现在开始[，,]?你|现在你是|扮演|系统\s*[:：]|系统提示|管理员模式|开发者模式)",
        ),
        # --- addressed to software -----------------------------------------------------------
        (
            "addressee",
            _EN,
            rf"\b(?:note|message|instructions?|notice|attention|attn|memo|directive|a note|reminder|hint) (?:to|for) (?:the |any |all |an? |our |your )?{_AI}s?\b",
        ),
        (
            "addressee",
            _EN,
            rf"\b(?:dear|hello|hi|hey|attention|attn|to) (?:the |our |an? )?{_AI}\b ?[,:!]",
        ),
        (
            "addressee",
            _EN,
            rf"\bif you are (?:an? |the )?{_AI}\b|\b(?:any|all) {_AI}s? (?:reading|processing|parsing|summari[sz]ing|reviewing) (?:this|these)\b|\b{_AI}s? (?:reading|processing|parsing) this (?:document|fax|text|page)\b",
        ),
        (
            "addressee",
            _EN,
            r"\b(?:invisible|hidden|not visible) to (?:humans|people|staff|the reader)\b|\bvisible (?:only )?to (?:the )?(?:ai|llm|model|scanner|automated)",
        ),
        (
            "addressee",
            "es",
            r"\b(?:nota|mensaje|instrucciones) (?:para|al|a la) (?:la |el )?(?:ia|inteligencia artificial|asistente|sistema automatizado|agente|modelo)\b|\bsi eres (?:una |un )?(?:ia|inteligencia artificial|asistente|modelo)\b",
        ),
        (
            "addressee",
            "fr",
            r"\b(?:note|message|instructions?) (?:pour|a|au|a l') ?(?:l'|le |la )?(?:ia|intelligence artificielle|assistant|systeme automatise|agent|modele)\b|\bsi (?:tu es|vous etes) (?:une |un )?(?:ia|intelligence artificielle|assistant|modele)\b",
        ),
        (
            "addressee",
            "de",
            r"\b(?:hinweis|nachricht|anweisung|anweisungen) (?:an|fur) (?:die |den |das )?(?:ki|kunstliche intelligenz|assistent\w*|automatisierte\w* system|agent\w*|modell)\b|\bwenn du (?:eine |ein )?(?:ki|assistent|sprachmodell) bist\b",
        ),
        (
            "addressee",
            "pt",
            r"\b(?:nota|mensagem|instrucoes) (?:para|ao|a) (?:a |o )?(?:ia|inteligencia artificial|assistente|sistema automatizado|agente|modelo)\b|\bse voce (?:e|for) (?:uma |um )?(?:ia|inteligencia artificial|assistente|modelo)\b",
        ),
        (
            "addressee",
            "it",
            r"\b(?:nota|messaggio|istruzioni) (?:per|al|alla|all') ?(?:l'|il |la )?(?:ia|intelligenza artificiale|assistente|sistema automatico|agente|modello)\b|\bse sei (?:una |un )?(?:ia|intelligenza artificiale|assistente|modello)\b",
        ),
        (
            "addressee",
            "zh",
            r"(?:致|给|对)(?:人工智能|ai|助手|智能体|模型|自动化系统|自动系统)|如果你是(?:人工智能|ai|助手|模型)",
        ),
        # --- skip people -----------------------------------------------------------------------
        (
            "no_review",
            _EN,
            r"\bno (?:human|manual|further|additional|clinical|staff|coordinator|person|people|reviewer|physician)? ?(?:review|approval|verification|oversight|sign-?off|check|checks|hold|confirmation)s? (?:is |are )?(?:needed|required|necessary)\b",
        ),
        (
            "no_review",
            _EN,
            r"\bwithout (?:any )?(?:human|manual|staff|coordinator|a person'?s?|people'?s?|reviewer|a reviewer'?s?) (?:review|approval|verification|oversight|intervention|sign-?off|checks?|confirmation|holds?)\b",
        ),
        (
            "no_review",
            _EN,
            rf"\b(?:do not|don't|dont|never|must not|should not|no need to) (?:flag|escalate|hold|quarantine|route|send|forward|show|alert|notify|ask|involve|bother|wait for) (?:this |the |it |a |any )?(?:{_RECORD}|human|humans|person|people|staff|reviewer|reviewers|coordinator|supervisor|for (?:review|approval|a human))\b",
        ),
        (
            "no_review",
            _EN,
            r"\b(?:skip|bypass|disable|turn off|circumvent|avoid) (?:the |all |any )?(?:human |manual )?(?:review|approval|verification|hold|holds|guardrails?|checks?|safety checks?|policy checks?|gate)\b",
        ),
        (
            "no_review",
            _EN,
            r"\b(?:auto-?approve|auto-?file|auto-?accept|automatically (?:approve|accept|file|authori[sz]e)|approve(?:d)? automatically|file (?:it|this) automatically)\b",
        ),
        (
            "no_review",
            _EN,
            r"\b(?:human|manual) review (?:is )?(?:not needed|unnecessary|not required|already done|waived|skipped)\b|\breview (?:has been |was )?(?:waived|skipped)\b",
        ),
        (
            "no_review",
            "es",
            r"\bsin (?:ninguna )?(?:revision|verificacion|aprobacion|supervision) (?:humana|manual)\b|\bno (?:se )?(?:requiere|necesita|hace falta) (?:ninguna )?(?:revision|verificacion|aprobacion) (?:humana|manual)?|\baprueba(?:lo|la)? automaticamente\b|\bno (?:lo |la )?(?:marques|escales|retengas)\b",
        ),
        (
            "no_review",
            "fr",
            r"\bsans (?:aucune )?(?:verification|revue|relecture|validation|approbation|controle) (?:humaine|manuelle)\b|\baucune (?:verification|revue|relecture|validation|approbation) (?:humaine |manuelle )?(?:n'est )?(?:necessaire|requise)\b|\bapprouve[zr]? automatiquement\b|\bne (?:le |la )?(?:signale[zr]?|bloque[zr]?)\b pas",
        ),
        (
            "no_review",
            "de",
            r"\bohne (?:menschliche|manuelle)? ?(?:prufung|uberprufung|freigabe|kontrolle|durchsicht)\b|\bkeine (?:menschliche |manuelle )?(?:prufung|uberprufung|freigabe|kontrolle) (?:ist )?(?:notig|erforderlich|notwendig)\b|\bautomatisch (?:genehmigen|freigeben|ablegen|akzeptieren)\b",
        ),
        (
            "no_review",
            "pt",
            r"\bsem (?:nenhuma )?(?:revisao|verificacao|aprovacao|supervisao) (?:humana|manual)\b|\bnao (?:e )?(?:necessaria|precisa de|requer) (?:nenhuma )?(?:revisao|verificacao|aprovacao)(?: (?:humana|manual))?\b|\baprove automaticamente\b",
        ),
        (
            "no_review",
            "it",
            r"\bsenza (?:alcuna )?(?:revisione|verifica|approvazione|supervisione|controllo) (?:umana|manuale)\b|\bnon (?:e )?(?:necessaria|richiesta|serve) (?:alcuna )?(?:revisione|verifica|approvazione)(?: (?:umana|manuale))?\b|\bapprova automaticamente\b",
        ),
        (
            "no_review",
            "zh",
            r"(?:无需|不需要|不用|无须|跳过|绕过)(?:人工|人为|任何)?(?:审核|审查|复核|审批|检查|核实)|自动(?:批准|通过|归档|接受)",
        ),
        # --- written-out tool calls ---------------------------------------------------------
        (
            "tool_call",
            _EN,
            r"[\"'](?:tool|tool_name|function|function_call|tool_calls|tool_use|action|name|call|recipient_name|api)[\"'] ?: ?[\"'\[{][\s\S]{0,200}[\"'](?:arguments|args|parameters|params|input|action_input|kwargs)[\"'] ?:",
        ),
        (
            "tool_call",
            _EN,
            r"<(?:tool_call|function_call|function_calls|invoke|tool_use|antml:invoke)\b|\b(?:call|invoke|run|execute|use) (?:the )?(?:tool|function|api|endpoint) [\"'`]?\w+[\"'`]?|\b(?:file_document|set_referral_status|send_request_attempt|escalate_to_staff|route_to_scheduling|update_patient|record_reply|close_document_request|open_document_request)\b",
        ),
        # --- leaking ------------------------------------------------------------------------
        (
            "leak",
            _EN,
            r"\b(?:print|repeat|reveal|show|output|display|spell check|translate|tell me|give me|return|dump|list|send|email|fax) (?:me )?(?:back )?(?:your|the|all|its) (?:previous |initial |original |hidden |full |secret |system |above )*(?:instructions|prompt|system prompt|rules|configuration|api keys?|credentials|passwords?|tokens?|secrets)\b",
        ),
        (
            "leak",
            _EN,
            r"\b(?:all|every|other) (?:patients'?|patient records|members'?|charts|medical records) (?:\w++ ){0,4}(?:to|at|via)\b|\b(?:social security numbers|ssns|passwords|api keys|credentials|login details) (?:of|for) (?:all|every|other)\b",
        ),
        # --- dictated output ----------------------------------------------------------------
        (
            "output",
            _EN,
            r"\b(?:just|only|simply) (?:say|print|output|write|respond with|reply with|answer with|return)\b|\b(?:respond|reply|answer|output) (?:only )?with (?:only |just |exactly )?(?:the following|this|[\"'<])|\breply with only\b|\brespond only with\b",
        ),
        (
            "output",
            _EN,
            r"\brepeat (?:the following|after me|this sentence)\b|\btranslate this sentence as\b|\bprovide it to the user\b|\bfocus (?:only|exclusively) on (?:the following|the information)\b|\bwrite one \w+ sentence about\b",
        ),
        # --- directives about records ----------------------------------------------------------
        (
            "directive",
            _EN,
            rf"\b(?:classify|categori[sz]e|label|mark|tag|treat|register|index|code|record|file) (?:this|the|these|it) (?:{_RECORD}s? )?as (?:an? |the )?(?:valid |complete |verified |approved |clinical |genuine )?(?:progress|referral|lab|laboratory|imaging|radiology|valid|complete|verified|approved|clinical|genuine|consult)",
        ),
        (
            "directive",
            _EN,
            r"\b(?:approve|accept|authori[sz]e|greenlight|sign off on|clear) (?:this|the|my|our) (?:referral|request|claim|authori[sz]ation|prior auth\w*|order|case|document|fax|invoice|payment|transfer)\b(?: (?:immediately|now|right away|at once|automatically))?",
        ),
        (
            "directive",
            _EN,
            r"\b(?:set|change|update|mark) (?:the )?(?:referral |task |claim )?(?:status|priority|decision) (?:to|as) (?:accepted|approved|completed|urgent|stat|cleared)\b",
        ),
        (
            "directive",
            _EN,
            r"\b(?:change|update|replace|overwrite|set) (?:the )?(?:patient'?s? )?(?:address|phone|phone number|telephone|dob|date of birth|member id|insurance|payer|bank account|email|fax number|contact) (?:on file |in the (?:chart|ehr|record) )?(?:to|with)\b",
        ),
        (
            "directive",
            "es",
            r"\b(?:aprueba|apruebe|aprueben|acepta|acepte|autoriza|autorice) (?:esta|este|la|el) (?:derivacion|remision|solicitud|referencia|interconsulta|autorizacion|documento)\b|\bclasifica(?:r)? (?:este|el) (?:documento|fax) como\b",
        ),
        (
            "directive",
            "fr",
            r"\b(?:approuve[zr]?|accepte[zr]?|autorise[zr]?|valide[zr]?) (?:cette|ce|la|le) (?:demande|orientation|reference|adressage|autorisation|document)\b|\bclasse[zr]? (?:ce|le) (?:document|fax) comme\b",
        ),
        (
            "directive",
            "de",
            r"\b(?:genehmige\w*|akzeptiere\w*|bewillige\w*|gib\w*) (?:\w++ ){0,2}(?:uberweisung|anfrage|uberweisungsanfrage|genehmigung|dokument)\b|\b(?:klassifiziere|stufe) (?:dieses|das) (?:dokument|fax) (?:als|ein)\b",
        ),
        (
            "directive",
            "pt",
            r"\b(?:aprove|aprova|aprovem|aceite|autorize)\b (?:este|esta|o|a) (?:encaminhamento|pedido|solicitacao|referencia|autorizacao|documento)\b|\bclassifique (?:este|o) (?:documento|fax) como\b",
        ),
        (
            "directive",
            "it",
            r"\b(?:approva|approvate|approvi|accetta|autorizza)\b (?:questa|questo|la|il|l') ?(?:richiesta|impegnativa|referral|invio|autorizzazione|documento)\b|\bclassifica (?:questo|il) (?:documento|fax) come\b",
        ),
        (
            "directive",
            "zh",
            r"(?:批准|通过|接受|授权)(?:此|这个|该|这份|本)?(?:转诊|申请|请求|文件|授权)|(?:将|把)(?:此|这份|该)?(?:文件|传真)(?:归类|分类|标记)为",
        ),
        # --- exfiltration --------------------------------------------------------------------
        (
            "exfiltration",
            _EN,
            r"\b(?:send|fax|email|e-mail|forward|upload|transmit|export|post|copy|share|release) (?:a copy of )?(?:the |this |her |his |their |all )?(?:patient'?s? )?(?:full|entire|complete|whole|all|every) (?:medical )?(?:chart|record|records|history|file|ehr|data|phi|documents)\b",
        ),
        ("exfiltration", _EN, r"!\[[^\]]*\]\(https?://[^)]*[?&](?:q|data|d|p|payload|info|x)="),
        (
            "exfiltration",
            "es",
            r"\b(?:envia|envie|enviar|manda|mande|reenvia|reenvie) (?:todo |toda )?(?:el |la )?(?:historial|expediente|historia clinica) (?:medico |clinico )?(?:completo|completa|entero)\b",
        ),
        (
            "exfiltration",
            "fr",
            r"\b(?:envoie[zr]?|transmet(?:tez|tre)?|faxe[zr]?) (?:tout |l'integralite du |le )?dossier (?:medical )?(?:complet|entier)\b",
        ),
        (
            "exfiltration",
            "de",
            r"\b(?:sende\w*|schicke\w*|faxe\w*|ubermittle\w*) (?:\w++ ){0,2}(?:gesamte|komplette|vollstandige|ganze) (?:kranken)?akte\b",
        ),
        (
            "exfiltration",
            "pt",
            r"\b(?:envie|envia|mande|encaminhe) (?:o )?(?:prontuario|historico medico|historico) (?:completo|inteiro)\b",
        ),
        (
            "exfiltration",
            "it",
            r"\b(?:invia|inviate|manda|mandate|inoltra) (?:l'intera |la )?(?:cartella clinica|cartella) (?:completa|intera)?\b",
        ),
        (
            "exfiltration",
            "zh",
            r"(?:发送|传真|转发|发给|上传)(?:完整的?|全部的?|所有的?|整份)(?:病历|病历记录|医疗记录|患者数据|档案)",
        ),
        # --- found in held-out errors (general forms) ------------------------------------------
        (
            "override",
            _EN,
            r"\b(?:supersedes?|overrides?|replaces?|cancels?|voids?|invalidates?) (?:all |any )?"
            r"(?:your|the|previous|prior|earlier|all|existing) (?:previous |prior |earlier )?"
            r"(?:instructions|rules|prompt|guidelines|directives|programming)\b",
        ),
        (
            "override",
            _EN,
            r"\b(?:your|the|these|all|filing|intake|review|safety) (?:instructions|rules|guidelines|"
            r"guardrails|policy|policies|restrictions) (?:no longer|do not|don't|does not|doesn't) "
            r"appl(?:y|ies)\b",
        ),
        (
            "override",
            _EN,
            r"\b(?:ignore|disregard|skip) (?:the rest of|everything (?:else )?in|all (?:other )?"
            r"(?:info|information|content|data|text) (?:except|but|other than)|anything (?:else )?in) "
            r"?(?:this|the)?\b",
        ),
        (
            "role",
            _EN,
            r"^ ?#{1,6} ?(?:system|developer|admin)(?: (?:prompt|message|instructions|override))? ?$",
        ),
        (
            "role",
            _EN,
            r"\b(?:system|admin|administrator|developer|root|sudo) (?:override|mode|command|instruction)s? ?:",
        ),
        # A bare "System:" or "Assistant:" label also heads EHR print footers and staff lines.
        ("role_hint", _EN, r"^ ?(?:#+ ?)?\[?(?:assistant|system)\]? ?:"),
        # --- found in the fresh set's errors (general forms) ---------------------------------
        (
            "no_review",
            _EN,
            r"\b(?:needs?|requires?) no (?:human |manual |coordinator |staff |further |reviewer |"
            r"person(?:al)? )?(?:review|approval|verification|sign-?off|check|hold|confirmation)s?\b",
        ),
        (
            "override",
            _EN,
            r"\b(?:pay no attention to|take no notice of|do not follow|don't follow|stop following|"
            r"no longer follow|do not obey|don't obey|stop obeying) (?:\w++ ){0,3}"
            r"(?:instructions|rules|prompt|guidelines|directives|programming)\b|\b(?:instructions|"
            r"rules|prompt|guidelines) (?:that )?you (?:were|have been|are) (?:configured|programmed|"
            r"trained|set up|initiali[sz]ed)\b",
        ),
        (
            "role",
            _EN,
            r"\bas (?:the|your|an?) (?:system |site |it |ehr )?(?:administrator|admin|developer|"
            r"operator|root user|superuser|owner of this (?:system|agent|model))\b",
        ),
        (
            "directive",
            _EN,
            r"\bi (?:hereby )?(?:authori[sz]e|instruct|order|command|permit) you to\b",
        ),
        (
            "addressee",
            _EN,
            r"\b(?:when|while|if) (?:you(?:'re| are)? )?(?:summari[sz]ing|summari[sz]e|processing|"
            r"parsing|classifying|ingesting)\b|\b(?:if|when) (?:the |a )?user "
            r"(?:asks|requests|queries|wants)\b|\b(?:tell|show|give) (?:it to )?the user\b",
        ),
        (
            "mentions_ai",
            _EN,
            r"\b(?:for|to|by) (?:the |any |all |an? )?(?:automated|ai|llm|ai-based|machine) "
            r"(?:\w++ )?(?:systems?|software|agents?|scanners?|models?|assistants?|readers?|"
            r"screeners?|reviewers?|scans?)\b",
        ),
        (
            "harmful_task",
            _EN,
            r"(?<!asked\x20to\x20)\b(?:write|compose|generate|create|produce) (?:one|a|an|\d+|some) "
            r"(?:\w++ )?(?:toxic|offensive|harmful|discriminatory|negative|unfriendly|hateful|rude|"
            r"insulting|racist|sexist|violent) (?:\w++ )?(?:sentences?|paragraphs?|messages?|poems?|"
            r"stor(?:y|ies)|jokes?|posts?|tweets?|comments?)\b",
        ),
        (
            "output",
            _EN,
            r"\b(?:respond|reply|answer|output) with (?:only )?(?:the words?|the phrase|the text)\b"
            r"|\bif (?:you are |you're )?(?:asked|questioned|prompted)\b[^.\n]{0,40}\b(?:say|report"
            r"|answer|respond|reply|state)\b|\bwith at most \d+ words\b",
        ),
        (
            "no_review",
            _EN,
            r"\b(?:skip|bypass|disable|circumvent|avoid) (?:the |all |any )?(?:coordinator|staff|"
            r"clinical|physician|nurse|supervisor|reviewer|intake|two-person) (?:review|approval|"
            r"verification|hold|sign-?off|check)s?\b",
        ),
        # --- pressure ------------------------------------------------------------------------
        (
            "pressure",
            _EN,
            r"\byou (?:may|must) not deviate\b|\bthis is a test\b|\bcritical to my career\b|\bpre-?(?:verified|approved|authori[sz]ed) by (?:senior|upper)? ?management\b|\bhighest priority override\b|\bcompliance requires you\b",
        ),
    )
)
