//! The `use_invite` hook: an invite link (`#/invite/<code>`) opened in this
//! page is accepted as soon as the page is signed in, and the page moves to
//! the room; a guest is asked to sign in first.

use yew::platform::spawn_local;
use yew::prelude::*;

use super::Account;
use crate::{browser, rooms_api};

/// Accepts the invite in the URL for `account`; returns what to tell the user, if anything.
#[hook]
pub fn use_invite(account: &Account) -> Option<String> {
    let code = use_state(browser::current_invite);
    let notice = use_state(|| None::<String>);
    {
        let code = code.setter();
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|window| {
                gloo_events::EventListener::new(&window, "hashchange", move |_| code.set(browser::current_invite()))
            });
            move || drop(listener)
        });
    }
    {
        let notice = notice.setter();
        use_effect_with(((*code).clone(), account.clone()), move |(code, account)| match (code, account) {
            (None, _) | (_, Account::Checking) => notice.set(None),
            (Some(_), Account::Guest) => notice.set(Some("Sign in or register to accept this invite.".to_owned())),
            (Some(code), Account::SignedIn(_)) => {
                let code = code.clone();
                spawn_local(async move {
                    match rooms_api::accept(&code).await {
                        Ok(room) => {
                            notice.set(None);
                            browser::open_room(&room);
                        }
                        Err(refused) => notice.set(Some(format!("This invite cannot be used: {refused}"))),
                    }
                });
            }
        });
    }
    (*notice).clone()
}
