# ruff: noqa: E501 - a table of regular expressions
"""Injection cues that ask for something to be done, as (kind, language, pattern) rows:
dictated output, directives about records, exfiltration, general forms found in the
held-out and fresh sets' errors, and pressure.

Compiled, after the control cues and in this order, by ``_injection_cues``.
"""

from __future__ import annotations

from ._injection_cue_words import _EN, _RECORD

ACTIONS: tuple[tuple[str, str, str], ...] = (
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
