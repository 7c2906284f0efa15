%%% mod_jinglepush: copies of Jingle call stanzas for jinglepush (an XEP-0114
%%% component), for ejabberd 23.01 and 24.12. See ../README.txt.
%%%
%%% It does for ejabberd what jinglepush.pfw does for Prosody, and replaces
%%% mod_service_log (a copy of every stanza of every local session) with
%%% copies of the call stanzas only, whoever sends them:
%%%
%%%   - every XEP-0353 message and XEP-0166 session-* IQ delivered to a local
%%%     user, online or not, from a local or a remote sender (sm_receive_packet,
%%%     run once per stanza that ejabberd_sm routes): to the component;
%%%   - every XEP-0353 message but a propose, and every session-* IQ but
%%%     session-initiate, that a local user sends to another server
%%%     (s2s_send_packet): the callee's answer from another device to a remote
%%%     caller. To the component;
%%%   - a propose that goes to offline storage (offline_message_hook), and a
%%%     propose or session-initiate sent to a session that waits for its
%%%     client to resume it (c2s_handle_send with mgmt_state pending: a
%%%     suspended phone): to undeliverable@<component>, which tells
%%%     jinglepush "the server could not deliver this live".
%%%
%%% Each copy is <message from=Host to=Component><forwarded
%%% xmlns='urn:xmpp:forward:0'>stanza</forwarded></message>, the shape of
%%% mod_service_log's copies. Group chat and headline messages are never
%%% copied: a call is a chat message.

-module(mod_jinglepush).
-behaviour(gen_mod).

-export([start/2, stop/1, reload/3, depends/2, mod_opt_type/1, mod_options/1, mod_doc/0]).
-export([sm_receive_packet/1, s2s_send_packet/1, offline_message/1, c2s_handle_send/3]).

-include("logger.hrl").
-include("xmpp.hrl").

-define(NS_JMI, <<"urn:xmpp:jingle-message:0">>).
-define(NS_JINGLE, <<"urn:xmpp:jingle:1">>).

%% Late in each hook, after the modules that may drop a stanza.
-define(PRIORITY, 90).

start(Host, _Opts) ->
    lists:foreach(fun({Hook, Fun}) -> ejabberd_hooks:add(Hook, Host, ?MODULE, Fun, ?PRIORITY) end, hooks()).

stop(Host) ->
    lists:foreach(fun({Hook, Fun}) -> ejabberd_hooks:delete(Hook, Host, ?MODULE, Fun, ?PRIORITY) end, hooks()).

reload(_Host, _NewOpts, _OldOpts) ->
    ok.

depends(_Host, _Opts) ->
    [].

hooks() ->
    [{sm_receive_packet, sm_receive_packet},
     {s2s_send_packet, s2s_send_packet},
     {offline_message_hook, offline_message},
     {c2s_handle_send, c2s_handle_send}].

mod_opt_type(component) ->
    econf:domain().

mod_options(_Host) ->
    [{component, undefined}].

mod_doc() ->
    #{desc => ["Sends the jinglepush component a copy of every Jingle call stanza "
               "(XEP-0353 and XEP-0166) that local users receive, or send to other "
               "servers, and marks proposes the server could not deliver live."],
      opts => [{component, #{value => "Domain", desc => "The component's JID."}}]}.

%%% Hooks

%% A stanza routed to a local user, from anywhere: ejabberd_sm runs this once
%% per stanza, before it picks sessions or offline storage.
-spec sm_receive_packet(stanza() | drop) -> stanza() | drop.
sm_receive_packet(drop) ->
    drop;
sm_receive_packet(Pkt) ->
    case call_stanza(Pkt) of
        false -> ok;
        _ -> forward(host(xmpp:get_to(Pkt)), component, Pkt)
    end,
    Pkt.

%% A stanza a local user sends to another server. A local caller's own
%% propose or session-initiate is not copied: jinglepush rings local users.
-spec s2s_send_packet(stanza() | drop) -> stanza() | drop.
s2s_send_packet(drop) ->
    drop;
s2s_send_packet(Pkt) ->
    case call_stanza(Pkt) of
        answer -> forward(host(xmpp:get_from(Pkt)), component, Pkt);
        _ -> ok
    end,
    Pkt.

%% A message for a user with no available session.
offline_message({_Action, #message{} = Msg} = Acc) ->
    case call_stanza(Msg) of
        propose -> forward(host(xmpp:get_to(Msg)), undeliverable, Msg);
        _ -> ok
    end,
    Acc;
offline_message(Acc) ->
    Acc.

%% A stanza for a session whose client is gone but may resume it (XEP-0198):
%% mod_stream_mgmt queues it instead of delivering it.
c2s_handle_send(#{mgmt_state := pending, lserver := Host} = State, Pkt, _Result) ->
    case call_stanza(Pkt) of
        propose -> forward(Host, undeliverable, Pkt);
        initiate -> forward(Host, undeliverable, Pkt);
        _ -> ok
    end,
    State;
c2s_handle_send(State, _Pkt, _Result) ->
    State.

%%% Internal

%% What a stanza is for jinglepush: a propose, a session-initiate, another
%% call stanza (answer), or nothing. Cheap: one pass over the children's
%% namespaces, no decoding.
-spec call_stanza(stanza()) -> propose | initiate | answer | false.
call_stanza(#message{type = Type}) when Type == groupchat; Type == headline ->
    false;
call_stanza(#message{sub_els = Els}) ->
    jmi(Els);
call_stanza(#iq{type = set, sub_els = [El]}) ->
    jingle(El);
call_stanza(_) ->
    false.

jmi([El | Els]) ->
    case xmpp:get_ns(El) of
        ?NS_JMI ->
            case xmpp:get_name(El) of
                <<"propose">> -> propose;
                _ -> answer
            end;
        _ ->
            jmi(Els)
    end;
jmi([]) ->
    false.

jingle(El) ->
    case xmpp:get_ns(El) of
        ?NS_JINGLE ->
            case fxml:get_tag_attr_s(<<"action">>, xmpp:encode(El)) of
                <<"session-initiate">> -> initiate;
                <<"session-", _/binary>> -> answer;
                _ -> false
            end;
        _ ->
            false
    end.

host(#jid{lserver = Host}) ->
    Host.

forward(Host, To, Pkt) ->
    case gen_mod:get_module_opt(Host, ?MODULE, component) of
        undefined ->
            ?WARNING_MSG("mod_jinglepush: no 'component' option for ~ts: not copying", [Host]);
        Component ->
            Dest = case To of
                       component -> jid:make(Component);
                       undeliverable -> jid:make(<<"undeliverable">>, Component)
                   end,
            ejabberd_router:route(#message{from = jid:make(Host), to = Dest,
                                           sub_els = [#forwarded{sub_els = [Pkt]}]})
    end.
