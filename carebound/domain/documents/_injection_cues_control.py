# ruff: noqa: E501, RUF001 - a table of regular expressions, some in scripts with lookalike punctuation
"""Injection cues that try to take control of the reader, as (kind, language, pattern) rows:
overriding earlier instructions, role claims and chat markup, text addressed to software,
asking to skip people, written-out tool calls, and leaking prompts, credentials or records.

Compiled, in this order, by ``_injection_cues``.
"""

from __future__ import annotations

from ._injection_cue_words import _AI, _CLINICAL, _EARLIER, _EN, _INSTR, _RECORD

CONTROL: tuple[tuple[str, str, str], ...] = (
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
)
