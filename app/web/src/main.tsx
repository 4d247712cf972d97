import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ApiClient } from "./api";
import { App } from "./App";
import { LsnStore, browserSessionStorage } from "./lsnStore";
import "./styles.css";

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root element");

const lsn = new LsnStore(browserSessionStorage());
const client = new ApiClient({ lsn });

createRoot(root).render(
  <StrictMode>
    <App client={client} lsn={lsn} />
  </StrictMode>,
);
