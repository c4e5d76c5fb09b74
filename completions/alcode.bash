# bash completion for alcode(1)                                        -*- shell-script -*-
# Installed as .../bash-completion/completions/alcode. Works without the bash-completion package
# too (`source` it): it uses only bash's own compgen and compopt.

# The accounts of the configuration (--config FILE, or the default one).
_alcode_accounts() {
    local conf=$1
    [[ -z $conf ]] && conf=${XDG_CONFIG_HOME:-$HOME/.config}/alcode/alcode.conf
    [[ -r $conf ]] || return
    sed -n 's/^[[:blank:]]*\[account[[:blank:]]\{1,\}\([^]]*\)\].*/\1/p' -- "$conf" 2>/dev/null
}

_alcode() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="list latest show scan check status rescan export forget init"
    local kinds="specific company access otp request file"
    local common="--db --config -c --json --help -h --version -V"
    local with_value="--db|--config|-c|--kind|--account|--email|--host|--port|--tls|--user|--password-command|--ca-file|--employer-domains"
    local cmd="" conf="" i w

    # --opt=value: bash splits it at '=' (COMP_WORDBREAKS).
    if [[ $cur == = ]]; then
        prev=${COMP_WORDS[COMP_CWORD-1]}
        cur=""
    elif [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi

    # The command is the first word that is neither an option nor an option's value.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == @(--config|-c) ]]; then
            if [[ ${COMP_WORDS[i+1]} == = ]]; then conf=${COMP_WORDS[i+2]}; else conf=${COMP_WORDS[i+1]}; fi
        fi
        if [[ $w == @($with_value) ]]; then
            ((i++))
            [[ ${COMP_WORDS[i]} == = ]] && ((i++))
            continue
        fi
        [[ $w == -* || $w == = ]] && continue
        [[ -z $cmd ]] && cmd=$w
    done

    case $prev in
        --db|--config|-c|--ca-file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --kind)
            COMPREPLY=($(compgen -W "$kinds" -- "$cur"))
            return ;;
        --tls)
            COMPREPLY=($(compgen -W "implicit starttls none" -- "$cur"))
            return ;;
        --account)
            [[ $cmd != init ]] && COMPREPLY=($(compgen -W "$(_alcode_accounts "$conf")" -- "$cur"))
            return ;;
        --email|--host|--port|--user|--password-command|--employer-domains)
            return ;;
    esac

    if [[ $cur == -* ]]; then
        local opts=""
        case $cmd in
            list) opts="--kind --account --untrusted" ;;
            scan) opts="--store --explain" ;;
            export) opts="--csv" ;;
            init) opts="--email --host --port --tls --user --password-command --ca-file --employer-domains
                        --account --no-test --no-enable --yes --oauth2 --oauth2-provider --oauth2-client-id
                        --oauth2-client-secret --oauth2-authorize-url --oauth2-token-url --oauth2-device-url
                        --oauth2-scope --device --token-file --reauth" ;;
        esac
        COMPREPLY=($(compgen -W "$common $opts" -- "$cur"))
        return
    fi

    # Arguments: the command itself, then what it takes.
    local n=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == @($with_value) ]]; then
            ((i++))
            [[ ${COMP_WORDS[i]} == = ]] && ((i++))
            continue
        fi
        [[ $w == -* || $w == = ]] || ((n++))
    done
    case $cmd in
        "")
            COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        latest)
            ((n == 1)) && COMPREPLY=($(compgen -W "$kinds" -- "$cur")) ;;
        rescan)
            ((n == 1)) && COMPREPLY=($(compgen -W "$(_alcode_accounts "$conf")" -- "$cur")) ;;
        scan)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}

complete -F _alcode alcode
