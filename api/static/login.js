// The login page: the same login as POST /v1/auth/token, answered with cookies
// (POST /v1/auth/session); the page never sees a token.
"use strict";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const response = await fetch("/v1/auth/session", {
    method: "POST",
    credentials: "same-origin",
    body: new URLSearchParams(new FormData(event.target)),
  });
  if (response.ok) {
    location.assign("/wallboard");
    return;
  }
  const problem = await response.json().catch(() => ({}));
  error.textContent = problem.detail || `Sign-in failed (${response.status}).`;
});
