//! The page: rooms and members beside the conversation, or the join form.

use yew::prelude::*;

use crate::components::{
    AccountForm, Composer, MemberList, MessageLog, ModerationPanel, NicknameForm, PrivateRooms, RoomList, StatusBar,
    TypingIndicator,
};
use crate::embedding;
use crate::hooks::{Account, use_account, use_chat, use_invite, use_unread_title};

/// The root component.
#[function_component]
pub fn App() -> Html {
    let chat = use_chat();
    let on_signed_in = {
        let (choose_nick, reconnect) = (chat.choose_nick.clone(), chat.reconnect.clone());
        Callback::from(move |(nick, just_now)| {
            // The old socket is a guest's: drop it before the join can use it.
            if just_now {
                reconnect.emit(());
            }
            choose_nick.emit(nick);
        })
    };
    let on_signed_out = {
        let (forget_nick, reconnect) = (chat.forget_nick.clone(), chat.reconnect.clone());
        Callback::from(move |()| {
            reconnect.emit(());
            forget_nick.emit(());
        })
    };
    let account = use_account(on_signed_in, on_signed_out);
    let invite_notice = use_invite(&account.account);
    // In another site's page with its token: the token says who we are.
    let embedded = *use_state(|| embedding::page_token().is_some());
    let state = &*chat.state;
    // Signed in, yet back at the join form: the account was signed out
    // elsewhere (its name refused to this guest socket). Ask who we are now.
    {
        let recheck = account.recheck.clone();
        let stale = matches!(account.account, Account::SignedIn(_)) && state.nick.is_none();
        use_effect_with(stale, move |stale| {
            if *stale {
                recheck.emit(());
            }
        });
    }
    let sidebar_open = use_state(|| false);
    use_unread_title(state);

    let toggle_sidebar = {
        let sidebar_open = sidebar_open.clone();
        Callback::from(move |_: MouseEvent| sidebar_open.set(!*sidebar_open))
    };
    let pending: Vec<_> = state.pending_here().cloned().collect();
    let sign_out = |everywhere: bool| {
        let sign_out = account.sign_out.clone();
        Callback::from(move |_: MouseEvent| sign_out.emit(everywhere))
    };

    // Signed-in users may report a message to the room's moderators.
    let on_report = matches!(account.account, Account::SignedIn(_)).then(|| {
        let room = state.room.clone();
        Callback::from(move |id: u64| {
            let room = room.clone();
            yew::platform::spawn_local(async move { crate::moderation_api::report_message(&room, id).await });
        })
    });
    // Signed-in users delete their own messages; moderators anyone's.
    let moderates = use_state(|| false);
    let on_delete = matches!(account.account, Account::SignedIn(_)).then(|| {
        let room = state.room.clone();
        Callback::from(move |id: u64| {
            let room = room.clone();
            yew::platform::spawn_local(async move { crate::moderation_api::confirm_and_delete(&room, id).await });
        })
    });
    let invite_banner =
        invite_notice.map(|notice| html! { <p class="banner notice" aria-live="polite">{ notice }</p> });

    html! {
        <div class={classes!("app", sidebar_open.then_some("sidebar-open"))}>
            <header class="topbar">
                <button type="button" class="menu" aria-label="Rooms and members"
                    aria-expanded={sidebar_open.to_string()} onclick={toggle_sidebar}>{ "☰" }</button>
                <h1>{ format!("#{}", state.room) }</h1>
                if let Account::SignedIn(name) = &account.account {
                    <span class="me">{ "signed in as " }<strong>{ name.as_str() }</strong></span>
                    <button type="button" class="link" onclick={sign_out(false)}>{ "Sign out" }</button>
                    <button type="button" class="link" onclick={sign_out(true)}>{ "Sign out everywhere" }</button>
                } else if let Some(nick) = &state.nick {
                    <span class="me">{ "as " }<strong>{ nick.as_str() }</strong></span>
                }
                <StatusBar status={state.connection} />
            </header>

            <aside class="sidebar">
                <RoomList rooms={state.rooms.clone()} current={state.room.clone()} />
                if let Account::SignedIn(name) = &account.account {
                    if !embedded {
                        <PrivateRooms current={state.room.clone()} />
                        <ModerationPanel room={state.room.clone()} on_moderates={moderates.setter().to_callback()} />
                    }
                    // On a phone the top bar has no room for these: they are here.
                    <section class="account-actions" aria-label="Account">
                        <p class="me">{ "signed in as " }<strong>{ name.as_str() }</strong></p>
                        <button type="button" class="link" onclick={sign_out(false)}>{ "Sign out" }</button>
                        <button type="button" class="link" onclick={sign_out(true)}>{ "Sign out everywhere" }</button>
                    </section>
                }
                if state.joined {
                    <MemberList members={state.members.clone()} me={state.nick.clone()}
                        crowd={state.crowd()} />
                }
            </aside>
            if state.nick.is_some() {
                <main class="conversation">
                    { invite_banner.clone() }
                    <MessageLog log={state.log.entries()} {pending} me={state.nick.clone()}
                        has_more={state.has_more} loading_older={state.loading_older}
                        on_load_older={chat.load_older.clone()} {on_report} {on_delete} moderates={*moderates} />
                    <TypingIndicator names={state.typing_names().into_iter().cloned().collect::<Vec<_>>()} />
                    if let Some(error) = &state.error {
                        <p class="error banner" role="alert">{ error }</p>
                    }
                    <Composer on_send={chat.send.clone()} on_typing={chat.typing.clone()} />
                </main>
            } else if embedded {
                <main class="welcome">
                    <p role="status">{ state.error.clone().unwrap_or_else(|| "Connecting…".to_owned()) }</p>
                </main>
            } else {
                <main class="welcome">
                    { invite_banner }
                    <NicknameForm on_join={chat.choose_nick.clone()} room={state.room.clone()}
                        server_error={state.error.clone()} />
                    if account.account == Account::Guest {
                        <AccountForm on_enter={account.enter.clone()} error={account.error.clone()} />
                    }
                </main>
            }
        </div>
    }
}
