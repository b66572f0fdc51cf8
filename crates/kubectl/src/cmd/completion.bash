# bash completion for kubectl                              -*- shell-script -*-
#
# Every TAB asks kubectl itself: `kubectl __completeNoDesc ARGS... CURRENT`
# prints the candidates one a line, then `:DIRECTIVE` (a bit set: 1 error,
# 2 no space after the word, 4 no file completion).
#
# Load it in the current shell:   source <(kubectl completion bash)

__kubectl_complete() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref -n =: cur words cword
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    COMPREPLY=()

    local -a lines
    mapfile -t lines < <("${words[0]}" __completeNoDesc "${words[@]:1:cword-1}" "$cur" 2>/dev/null)
    [[ ${#lines[@]} -eq 0 ]] && return
    local directive=${lines[${#lines[@]}-1]#:}
    unset 'lines[${#lines[@]}-1]'
    [[ $directive =~ ^[0-9]+$ ]] || directive=0
    (( directive & 1 )) && return

    # `--flag=VALUE`: candidates are values; bash completes the part after `=`.
    local value=$cur
    if [[ $cur == -*=* ]]; then
        value=${cur#*=}
    fi
    local candidate
    for candidate in "${lines[@]}"; do
        [[ $candidate == "$value"* ]] && COMPREPLY+=("$candidate")
    done

    if (( directive & 2 )); then
        compopt -o nospace 2>/dev/null
    fi
    if (( directive & 4 )); then
        compopt +o default 2>/dev/null
    fi
    if declare -F __ltrim_colon_completions >/dev/null 2>&1; then
        __ltrim_colon_completions "$cur"
    fi
}

complete -o default -F __kubectl_complete kubectl
