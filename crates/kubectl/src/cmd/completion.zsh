#compdef kubectl
compdef _kubectl kubectl

# zsh completion for kubectl
#
# Every TAB asks kubectl itself: `kubectl __complete ARGS... CURRENT` prints
# `value<TAB>description` lines, then `:DIRECTIVE` (a bit set: 1 error,
# 2 no space after the word, 4 no file completion).
#
# Load it in the current shell:   source <(kubectl completion zsh)

_kubectl() {
    local current=${words[CURRENT]}
    local -a lines comps
    lines=("${(@f)$(${words[1]} __complete ${words[2,CURRENT-1]} "$current" 2>/dev/null)}")
    (( ${#lines} == 0 )) && return 1
    local directive=${lines[-1]#:}
    lines=("${(@)lines[1,-2]}")
    [[ $directive == <-> ]] || directive=0
    (( directive & 1 )) && return 1

    # `--flag=VALUE`: candidates are values; keep the flag in front of them.
    local prefix=""
    if [[ $current == -*=* ]]; then
        prefix="${current%%=*}="
    fi
    local line value desc
    for line in "${lines[@]}"; do
        [[ -z $line ]] && continue
        value=${line%%$'\t'*}
        desc=""
        [[ $line == *$'\t'* ]] && desc=${line#*$'\t'}
        value="${prefix}${value//:/\\:}"
        if [[ -n $desc ]]; then
            comps+=("${value}:${desc}")
        else
            comps+=("${value}")
        fi
    done

    if (( ${#comps} > 0 )); then
        if (( directive & 2 )); then
            _describe -t completions 'completions' comps -S ''
        else
            _describe -t completions 'completions' comps
        fi
    elif (( ! (directive & 4) )); then
        _files
    fi
}

if [ "$funcstack[1]" = "_kubectl" ]; then
    _kubectl "$@"
else
    compdef _kubectl kubectl
fi
