//! The `use_account` hook: who this browser is signed in as, asked once at
//! load, and the callbacks that change it. A change reconnects the socket
//! (the session cookie counts at the upgrade) and joins under the account's
//! name, or, signed out, goes back to the join form.

use chat_shared::Nickname;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::account::{self, Entry};

/// Who the page is, as far as accounts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// Not known yet (the first `GET /api/me` is under way).
    Checking,
    /// Not signed in.
    Guest,
    /// Signed in as this account.
    SignedIn(String),
}

/// What components get from [`use_account`].
#[derive(Clone, PartialEq)]
pub struct AccountHandle {
    /// Who the page is.
    pub account: Account,
    /// The last refusal to show (wrong password, name taken...).
    pub error: Option<String>,
    /// Register or sign in with a username and password.
    pub enter: Callback<(Entry, String, String)>,
    /// Sign out of this browser (`false`) or everywhere (`true`).
    pub sign_out: Callback<bool>,
    /// Ask the server again who this browser is (the socket was refused the
    /// account's name: it was signed out elsewhere).
    pub recheck: Callback<()>,
}

/// Tracks the account; `on_signed_in` gets the account's name, and whether
/// it signed in just now (`false`: it was at load, and the socket opened
/// with the cookie already); `on_signed_out` fires after a sign-out.
#[hook]
pub fn use_account(on_signed_in: Callback<(Nickname, bool)>, on_signed_out: Callback<()>) -> AccountHandle {
    let account = use_state(|| Account::Checking);
    let error = use_state(|| None::<String>);

    let signed_in = {
        let (account, error) = (account.setter(), error.setter());
        Callback::from(move |(name, just_now): (String, bool)| {
            error.set(None);
            account.set(Account::SignedIn(name.clone()));
            if let Ok(nick) = Nickname::parse(name) {
                on_signed_in.emit((nick, just_now));
            }
        })
    };
    let recheck = {
        let (account, signed_in) = (account.setter(), signed_in.clone());
        Callback::from(move |()| {
            let (account, signed_in) = (account.clone(), signed_in.clone());
            spawn_local(async move {
                match account::current().await {
                    Ok(Some(name)) => signed_in.emit((name, false)),
                    // Unreachable or refused: chat on as a guest.
                    Ok(None) | Err(_) => account.set(Account::Guest),
                }
            });
        })
    };
    {
        let recheck = recheck.clone();
        use_effect_with((), move |()| recheck.emit(()));
    }
    let enter = {
        let error = error.setter();
        Callback::from(move |(entry, username, password): (Entry, String, String)| {
            let (error, signed_in) = (error.clone(), signed_in.clone());
            spawn_local(async move {
                match account::enter(entry, username, password).await {
                    Ok(name) => signed_in.emit((name, true)),
                    Err(refused) => error.set(Some(refused)),
                }
            });
        })
    };
    let sign_out = {
        let (account, error) = (account.setter(), error.setter());
        Callback::from(move |everywhere: bool| {
            let (account, error, on_signed_out) = (account.clone(), error.clone(), on_signed_out.clone());
            spawn_local(async move {
                match account::sign_out(everywhere).await {
                    Ok(()) => {
                        error.set(None);
                        account.set(Account::Guest);
                        on_signed_out.emit(());
                    }
                    Err(refused) => error.set(Some(refused)),
                }
            });
        })
    };
    AccountHandle { account: (*account).clone(), error: (*error).clone(), enter, sign_out, recheck }
}
